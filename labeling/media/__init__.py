"""Movies in, clips proposed and extracted, media storage and serving."""

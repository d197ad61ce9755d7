"""Pages, one module per sub-domain (the URLs are in ``labeling/urls.py``)."""

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VAR_DIR=/srv/var MEDIA_ROOT=/srv/media
WORKDIR /app
COPY pyproject.toml README.md ./
COPY annotation_site annotation_site
COPY labeling labeling
COPY pipeline pipeline
COPY ml ml
COPY manage.py ./
RUN pip install --no-cache-dir . && useradd --create-home dfer && mkdir -p /srv/var /srv/media \
    && chown -R dfer /srv
USER dfer
EXPOSE 8000
CMD ["gunicorn", "annotation_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]

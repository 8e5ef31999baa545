# Production image: gunicorn serving marlin.wsgi, static files collected (served by WhiteNoise).
# The same image runs the Celery worker and beat (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system marlin \
    && useradd --system --gid marlin --home-dir /app --no-create-home --shell /usr/sbin/nologin marlin

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# Settings refuse to load without a SECRET_KEY when DEBUG is off; this one is only for
# collectstatic at build time and never reaches a running container.
RUN DJANGO_SETTINGS_MODULE=marlin.settings DEBUG=false SECRET_KEY=build-time-collectstatic-only \
        python manage.py collectstatic --noinput

USER marlin

ENV DJANGO_SETTINGS_MODULE=marlin.settings
EXPOSE 8000

CMD ["gunicorn", "marlin.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]

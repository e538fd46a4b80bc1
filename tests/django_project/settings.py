"""A minimal Django project for tests/test_django.py: the embedded PostgreSQL's address and the
models folder come from the test session (environment variables set by its fixture)."""

import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "pgface.django",
    "django_project.album",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "django_project.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": "album",  # never created: the tests run in Django's test database
    "USER": "postgres",
    "HOST": os.environ["PGFACE_TEST_PGHOST"],
    "PORT": os.environ["PGFACE_TEST_PGPORT"],
}}
# a second alias for pgface's tables (PGFACE["DATABASE"]): the test of the admin on it points
# it at a database of its own
DATABASES["faces"] = {**DATABASES["default"], "NAME": "album_faces"}
PGFACE = {"MODELS_DIR": os.environ["PGFACE_TEST_MODELS_DIR"]}

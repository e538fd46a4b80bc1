"""pgface in a Django project: its tables as read-only models, face similarity in the ORM, its
commands under manage.py and an admin. docs/django.md walks through it.

INSTALLED_APPS += ["pgface.django"]; settings.PGFACE (optional) holds pgface's settings.
"""

"""pgface's tables in Django's migration state, so that `makemigrations` has nothing to write
into this package (it would have, pgface.django having no migrations). The models are
unmanaged: these operations touch no table (pgface creates and migrates its own, see
conf.ensure_schema). db_table follows PGFACE["DB_SCHEMA"] as the models do, so another
schema is no change either. Written by Django 5.2's makemigrations."""

import pgvector.django.vector
from django.contrib.postgres.fields import ArrayField
from django.db import migrations, models

import pgface.django.models
from pgface.django.models import _table


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='Face',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('model_pack', models.TextField(db_column='model')),
                ('embedding', pgvector.django.vector.VectorField(dimensions=512)),
                ('bbox', ArrayField(base_field=models.FloatField(), size=4)),
                ('landmarks', ArrayField(base_field=models.FloatField(), size=10)),
                ('det_score', models.FloatField()),
                ('crop', models.BinaryField()),
                ('assigned_by', models.TextField(null=True)),
                ('clustered_at', models.DateTimeField(null=True)),
            ],
            options={
                'db_table': _table('faces'),
                'ordering': ['id'],
                'abstract': False,
                'managed': False,
                'base_manager_name': 'objects',
            },
        ),
        migrations.CreateModel(
            name='Person',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('name', models.TextField(null=True, unique=True)),
                ('hidden', models.BooleanField(default=False)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
            ],
            options={
                'verbose_name_plural': 'people',
                'db_table': _table('people'),
                'ordering': ['id'],
                'abstract': False,
                'managed': False,
                'base_manager_name': 'objects',
            },
        ),
        migrations.CreateModel(
            name='Photo',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('sha256', models.BinaryField()),
                ('path', models.TextField()),
                ('size_bytes', models.BigIntegerField()),
                ('width', models.IntegerField()),
                ('height', models.IntegerField()),
                ('taken_at', pgface.django.models.WallClockDateTimeField(null=True)),
                ('indexed_at', models.DateTimeField()),
                ('face_count', models.IntegerField()),
            ],
            options={
                'db_table': _table('photos'),
                'ordering': ['id'],
                'abstract': False,
                'managed': False,
                'base_manager_name': 'objects',
            },
        ),
    ]

"""An application's own models: one that points at pgface's people, one with a photo file."""

from django.db import models


class Tag(models.Model):
    label = models.CharField(max_length=100)
    # pgface's tables are not Django's to constrain: no foreign key constraint in the database
    person = models.ForeignKey("pgface.Person", models.DO_NOTHING, db_constraint=False,
                               related_name="tags")

    class Meta:
        app_label = "album"


class Upload(models.Model):
    """A photo a user uploaded (a FieldFile for similar_to: probe django39)."""

    photo = models.FileField(upload_to="uploads")

    class Meta:
        app_label = "album"

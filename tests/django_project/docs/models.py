from django.db import models


class Document(models.Model):
    text = models.TextField()
    summary = models.TextField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        app_label = "docs"

from django.apps import AppConfig


class DocsConfig(AppConfig):
    name = "tests.django_project.docs"
    label = "docs"

"""A minimal Django project for the integration tests: one app, one model, one command."""

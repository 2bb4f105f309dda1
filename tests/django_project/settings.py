"""Settings of the test project. The tests put the SQLite file in a temporary folder."""

SECRET_KEY = "test-only-not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["tests.django_project.docs"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # Replaced by the tests: a file, since an in-memory database is per connection and
        # worker threads would each see an empty one.
        "NAME": "db.sqlite3",
        # Worker threads read while the command's thread writes; wait for the lock.
        "OPTIONS": {"timeout": 20},
    }
}

"""Django: a real project (tests/django_project) whose management command runs a Pool.

The command reads ids in its own thread, loads each text in a worker thread (which opens
that thread's own connection), calls the simulator, and writes in its own thread. The
database is a SQLite file: an in-memory one is per connection, so workers would not see it.
"""

from __future__ import annotations

import io
import pickle
import threading

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402

from yait_aichain import DONE, Pool  # noqa: E402
from yait_aichain.integrations.django import close_db_connections, command_progress  # noqa: E402
from yait_aichain.testing import Fault  # noqa: E402

COMMAND = "summarise_documents"
PROMPT = "Summarise in one sentence: "


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from django.db import connections

    if not settings.configured:  # settings.configure() works once per process
        from tests.django_project import settings as project_settings

        values = {k: getattr(project_settings, k) for k in dir(project_settings) if k.isupper()}
        db = tmp_path_factory.mktemp("django") / "db.sqlite3"
        default = {**project_settings.DATABASES["default"], "NAME": str(db)}
        values["DATABASES"] = {"default": default}
        settings.configure(**values)
        django.setup()
        call_command("migrate", verbosity=0)
    yield
    connections.close_all()


@pytest.fixture
def documents(project):
    from tests.django_project.docs.models import Document

    Document.objects.all().delete()
    Document.objects.bulk_create(Document(text=f"Document {i} text") for i in range(20))
    return Document


@pytest.fixture
def opened():
    """Every connection wrapper Django creates, with the thread that created it. Strong
    references: a wrapper must not vanish before the test looks at it."""
    from django.db.backends.signals import connection_created

    seen: list[tuple[int, object]] = []

    def track(sender, connection, **kwargs):
        seen.append((threading.get_ident(), connection))

    connection_created.connect(track, weak=False)
    yield seen
    connection_created.disconnect(track)
    main = threading.get_ident()
    for ident, wrapper in seen:  # whatever a test left open, close it here
        if ident != main and wrapper.connection is not None:
            wrapper.connection.close()


def _worker_wrappers(opened):
    main = threading.get_ident()
    return [wrapper for ident, wrapper in opened if ident != main]


def test_command_summarises_every_row_and_closes_worker_connections(documents, opened, sim_env):
    out = io.StringIO()
    call_command(COMMAND, "--max-flows=4", stdout=out)

    rows = list(documents.objects.order_by("pk").values_list("text", "summary", "error"))
    assert len(rows) == 20
    assert all(summary == f"Summary: {PROMPT}{text}" and not error for text, summary, error in rows)
    assert out.getvalue() == "20 summarised, 0 failed\n"  # no progress: not a terminal
    workers = _worker_wrappers(opened)
    assert workers, "the workers should have opened their own connections"
    assert all(w.connection is None for w in workers), "a worker thread left a connection open"


def test_a_failed_row_is_marked_and_the_command_fails(documents, opened, sim_env):
    sim_env.fail_when("Document 7 text", Fault.unauthorized())
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 document"):
        call_command(COMMAND, stdout=out)

    failed = documents.objects.get(text="Document 7 text")
    assert failed.summary is None and failed.error.startswith("ChainStepError: ")
    assert "AuthenticationError" in failed.error
    assert documents.objects.filter(summary__isnull=False).count() == 19
    assert all(w.connection is None for w in _worker_wrappers(opened))


def test_limit_and_a_second_run_picks_up_the_rest(documents, sim_env):
    call_command(COMMAND, "--limit=5", stdout=io.StringIO())
    assert documents.objects.filter(summary__isnull=False).count() == 5
    out = io.StringIO()
    call_command(COMMAND, stdout=out)
    assert out.getvalue() == "15 summarised, 0 failed\n"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_drawn_on_a_terminal_stdout_only(documents, sim_env):
    tty = _Terminal()
    call_command(COMMAND, "--limit=3", stdout=tty)
    text = tty.getvalue()
    assert "\r" in text and "3/3" in text and text.endswith("3 summarised, 0 failed\n")

    quiet = _Terminal()
    call_command(COMMAND, verbosity=0, stdout=quiet)
    assert quiet.getvalue() == ""


def test_without_the_helper_worker_connections_stay_open(documents, opened):
    # The control experiment: it proves the test above would see a leak.
    from tests.django_project.docs.management.commands.summarise_documents import load_text

    pks = list(documents.objects.values_list("pk", flat=True)[:6])
    pool = Pool(load_text, [{"pk": pk} for pk in pks], max_flows=3)
    assert all(pool.run())
    workers = _worker_wrappers(opened)
    assert workers and any(w.connection is not None for w in workers)


def test_close_db_connections_wraps_each_item_and_pickles(documents, opened):
    from tests.django_project.docs.management.commands.summarise_documents import load_text

    pks = list(documents.objects.values_list("pk", flat=True)[:6])
    pool = Pool(load_text, [{"pk": pk} for pk in pks], max_flows=3,
                worker_context=close_db_connections)
    assert pool.run() == [f"Document {i} text" for i in range(6)]
    assert all(r.status == DONE for r in pool.records)
    assert all(w.connection is None for w in _worker_wrappers(opened))
    # Module-level, so it travels with Pool(executor=...) to other processes.
    assert pickle.loads(pickle.dumps(close_db_connections)) is close_db_connections


def test_command_progress_follows_the_terminal_and_verbosity():
    class Command:
        stdout = _Terminal()

    assert command_progress(Command()) is not False
    assert command_progress(Command(), verbosity=0) is False
    Command.stdout = io.StringIO()
    assert command_progress(Command()) is False


def test_the_readme_shows_the_tested_command():
    from pathlib import Path

    root = Path(__file__).parent
    readme = root.parent / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    if "summarise_documents" not in text:
        pytest.skip("README has no Django section yet")
    command = root / "django_project/docs/management/commands/summarise_documents.py"
    assert command.read_text().strip() in text

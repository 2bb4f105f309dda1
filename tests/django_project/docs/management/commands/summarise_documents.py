"""``manage.py summarise_documents``: fill in Document.summary with an LLM, many at once.

The pattern: read ids in the command's thread, call the LLM in the Pool's worker threads,
write results back in the command's thread (``on_item_done``). The one query a worker
makes (``load_text``) opens that thread's own connection, which ``close_db_connections``
closes when the item ends.
"""

from django.core.management.base import BaseCommand, CommandError

from yait_aichain import DONE, FAILED, Chain, Model, Pool, Skill
from yait_aichain.integrations.django import close_db_connections, command_progress

from ...models import Document


def load_text(variables):
    """Chain step, run in a worker thread: the document's text by primary key."""
    return Document.objects.values_list("text", flat=True).get(pk=variables["pk"])


class Command(BaseCommand):
    help = "Summarise every document that has no summary yet."

    def add_arguments(self, parser):
        parser.add_argument("--max-flows", type=int, default=8, help="items run at once")
        parser.add_argument("--limit", type=int, default=None, help="at most this many rows")
        parser.add_argument("--model", default="claude-haiku-4-5", help="the model to call")

    def handle(self, *args, max_flows, limit, model, verbosity, **options):
        # Plain ids only: a model instance or a lazy QuerySet evaluated in a worker thread
        # would use a connection created in another thread.
        pending = Document.objects.filter(summary__isnull=True).order_by("pk")
        pks = list(pending.values_list("pk", flat=True)[:limit])
        summarise = Chain([
            (load_text, "text"),
            Skill(model=Model(model), prompt="Summarise in one sentence:\n\n{text}"),
        ])

        def save(record):
            # on_item_done runs in this thread, so every write uses its one connection.
            pk = record.variables["pk"]
            if record.status == DONE:
                Document.objects.filter(pk=pk).update(summary=record.output, error="")
            else:
                problem = f"{record.error_type}: {record.error_message}"
                Document.objects.filter(pk=pk).update(error=problem[:200])

        pool = Pool(
            summarise, [{"pk": pk} for pk in pks], max_flows=max_flows,
            worker_context=close_db_connections,
            on_item_done=save,
            progress=command_progress(self, verbosity),
        )
        pool.run()
        done, failed = pool.status[DONE], pool.status[FAILED]
        if verbosity >= 1:
            self.stdout.write(f"{done} summarised, {failed} failed")
        if failed:
            raise CommandError(f"{failed} document(s) failed; run the command again to retry them")

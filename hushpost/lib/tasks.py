"""The task queue's backend: django-tasks-db's, with its row written by ``lib/rows.py``.

Every notification queues a task in the transaction that owes the e-mail (a send, an
opening with a read receipt, a reply, a spooled e-mail stored). django-tasks-db writes that
row with ``DBTaskResult.objects.create``, whose query compiling was a seventh of a send's
CPU; here the same instance, with the same values, is written by the row writer, which runs
the library's own ``pre_save`` receiver (an unset ``run_after`` becomes "at once") and
stamps ``enqueued_at`` as ``auto_now_add`` does. Everything else (validation, the
``task_enqueued`` signal, the worker, results) is the library's.
"""

from __future__ import annotations

from django_tasks_db import DatabaseBackend as _LibraryBackend
from django_tasks_db.backend import normalize_json

from hushpost.lib import rows


class DatabaseBackend(_LibraryBackend):
    def _task_to_db_task(self, task, args, kwargs):
        from django_tasks_db.models import DBTaskResult

        result = DBTaskResult(
            id=self._get_id(),
            args_kwargs=normalize_json({"args": args, "kwargs": kwargs}),
            priority=task.priority,
            task_path=task.module_path,
            queue_name=task.queue_name,
            run_after=task.run_after,
            backend_name=self.alias,
        )
        rows.insert(result)
        return result

"""xAPI emission: committed domain events become xAPI 1.0.3 statements in an LRS.

Data flow (see docs/events.md for the events):

1. A service emits a domain event in its business transaction.
2. After commit, the event is dispatched to ``lms_handle_event``. The core
   registers :mod:`lms_core.xapi.plugin` on every app's plugin manager under
   the name ``xapi_emitter``, so this is the same idempotent, replayable path
   the plugins use (a mapping failure shows in ``flask lms events failures``).
3. The handler maps the event (:mod:`lms_core.xapi.statements`) and writes one
   ``xapi_outbox`` row per event, then queues an ``xapi.deliver`` job.
4. The job (:mod:`lms_core.xapi.services`) posts due rows in batches through
   :mod:`lms_core.xapi.tincan_adapter`, the one module that talks to tincan.
   LRS down: rows stay pending with exponential backoff; a rejected statement
   is marked failed with the LRS's answer; ``flask lms xapi`` shows and replays.
"""

"""QuietTask, the base of every task: no exception text from a Twilio call reaches Celery's logs.

The text of a Twilio exception can quote the request's URL (`Messages.json?To=%2B44...`) or Twilio's
message ("The 'To' number +44... is not valid"); Celery logs an escaping exception with its text and
traceback. describe() (router/twilio_rest.py) says what failed without them.
"""
from __future__ import annotations

import requests
from celery import Task
from celery.exceptions import Retry
from twilio.base.exceptions import TwilioException

from router.twilio_rest import describe


class TwilioCallFailed(Exception):
    """What a task raises in place of an exception from a Twilio call: its description only."""


class QuietTask(Task):
    """Every task's base: an exception from a Twilio call (or the HTTP below it) that a task let escape
    becomes TwilioCallFailed with describe()'s words, so Celery's "raised unexpected: ..." line and
    its traceback never carry the original's text. Retries pass through untouched."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except Retry:
            raise
        except (TwilioException, requests.RequestException) as exc:
            raise TwilioCallFailed(describe(exc)) from None

"""Import every core model so that ``db.metadata`` is complete (Alembic, create_all)."""

from lms_core.accounts.models import ApiToken, LoginAttempt, RoleAssignment, User
from lms_core.events.models import Event, EventHandlerFailure
from lms_core.jobs.models import Job
from lms_core.media.models import MediaDelivery, MediaFile
from lms_core.orgs.models import OrgUnit
from lms_core.settings.models import Setting

__all__ = ["ApiToken", "Event", "EventHandlerFailure", "Job", "LoginAttempt", "MediaDelivery", "MediaFile", "OrgUnit", "RoleAssignment",
           "Setting", "User"]

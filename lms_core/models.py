"""Import every core model so that ``db.metadata`` is complete (Alembic, create_all)."""

from lms_core.accounts.models import ApiToken, ImportRun, LoginAttempt, RoleAssignment, User
from lms_core.courses.models import Course, CourseInstructor, Lesson, Section, Topic
from lms_core.enrolments.models import Assignment, Enrolment
from lms_core.events.models import Event, EventHandlerFailure
from lms_core.jobs.models import Job
from lms_core.learning.models import (
    DailyTotal,
    LearningInterval,
    LearningSession,
    LessonFeedback,
    LessonProgress,
    PersonClock,
    SurveyAnswer,
    SurveyQuestion,
)
from lms_core.media.models import MediaDelivery, MediaFile
from lms_core.orgs.models import OrgUnit
from lms_core.quizzes.models import Attempt, Question
from lms_core.reports.models import Rollup, UnitMonth
from lms_core.settings.models import Setting
from lms_core.xapi.models import XapiOutbox

__all__ = [
    "ImportRun",
    "Assignment",
    "DailyTotal",
    "Attempt",
    "Course",
    "CourseInstructor",
    "Enrolment",
    "LearningInterval",
    "LearningSession",
    "Lesson",
    "LessonFeedback",
    "LessonProgress",
    "Question",
    "Rollup",
    "UnitMonth",
    "Section",
    "Topic",
    "ApiToken",
    "Event",
    "EventHandlerFailure",
    "Job",
    "LoginAttempt",
    "MediaDelivery",
    "MediaFile",
    "OrgUnit",
    "PersonClock",
    "RoleAssignment",
    "Setting",
    "SurveyAnswer",
    "SurveyQuestion",
    "User",
    "XapiOutbox",
]

"""Authoring forms."""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, DecimalField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from lms_core.quizzes.models import QuestionKind


class CourseForm(FlaskForm):
    code = StringField(_l("Course code"), validators=[DataRequired(), Length(max=64)])
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    topic = StringField(_l("Topic (专题)"), validators=[Optional(), Length(max=100)])
    hours = DecimalField(
        _l("Nominal study hours (学时)"),
        places=2,
        default=Decimal("1.00"),
        validators=[DataRequired(), NumberRange(min=0, max=1000)],
    )
    required = BooleanField(_l("Required course (必修)"))


class SectionForm(FlaskForm):
    title = StringField(_l("Section title"), validators=[DataRequired(), Length(max=200)])


class LessonForm(FlaskForm):
    title = StringField(_l("Lesson title"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(
        _l("Kind"),
        choices=[
            SelectChoice("video", _l("Video")),
            SelectChoice("document", _l("Document (PDF)")),
            SelectChoice("quiz", _l("Quiz")),
            SelectChoice("survey", _l("Feedback survey")),
        ],
    )
    file = FileField(_l("File (MP4/WebM video or PDF)"))
    required = BooleanField(_l("Required for completion"), default=True)
    completion_threshold_pct = IntegerField(
        _l("Video: coverage needed (%)"), default=95, validators=[Optional(), NumberRange(min=1, max=100)]
    )
    min_read_seconds = IntegerField(
        _l("Document: minimum reading time (s)"), default=60, validators=[Optional(), NumberRange(min=0, max=36000)]
    )
    passing_score_pct = IntegerField(
        _l("Quiz: passing score (%)"), default=60, validators=[Optional(), NumberRange(min=0, max=100)]
    )
    max_attempts = IntegerField(
        _l("Quiz: attempts (0 = unlimited)"), default=3, validators=[Optional(), NumberRange(min=0, max=100)]
    )
    show_correct_answers = BooleanField(_l("Quiz: after an attempt, also show the correct answers"))


class QuizSettingsForm(FlaskForm):
    show_correct_answers = BooleanField(_l("After an attempt, also show the correct answers"))


class QuestionForm(FlaskForm):
    kind = SelectField(
        _l("Question type"),
        choices=[
            SelectChoice(QuestionKind.SINGLE.value, _l("Single choice")),
            SelectChoice(QuestionKind.MULTIPLE.value, _l("Multiple choice")),
            SelectChoice(QuestionKind.TRUE_FALSE.value, _l("True / false")),
        ],
    )
    text = TextAreaField(_l("Question"), validators=[DataRequired(), Length(max=2000)])
    options = TextAreaField(
        _l("Options, one per line (not needed for true/false)"), validators=[Optional(), Length(max=4000)]
    )
    correct = StringField(
        _l("Correct option numbers, e.g. 1 or 1,3 (true/false: 1 = true, 2 = false)"),
        validators=[DataRequired(), Length(max=50)],
    )
    points = IntegerField(_l("Points"), default=1, validators=[NumberRange(min=1, max=100)])


class SurveyQuestionForm(FlaskForm):
    """One survey question; ``options`` are a choice question's options or a rating's point labels."""

    kind = SelectField(
        _l("Question type"),
        choices=[
            SelectChoice("rating", _l("Rating")),
            SelectChoice("single", _l("Single choice")),
            SelectChoice("multiple", _l("Multiple choice")),
            SelectChoice("text", _l("Open answer")),
        ],
    )
    text = TextAreaField(_l("Question"), validators=[DataRequired(), Length(max=1000)])
    scale = IntegerField(
        _l("Rating: points on the scale (2–10)"), default=5, validators=[Optional(), NumberRange(min=2, max=10)]
    )
    options = TextAreaField(
        _l("Options, one per line; for a rating, optionally one label per point, lowest first"),
        validators=[Optional(), Length(max=5000)],
    )
    required = BooleanField(_l("An answer is required"), default=True)


class LessonEditForm(FlaskForm):
    """Everything about a lesson an author may change; fields of other kinds are ignored."""

    title = StringField(_l("Lesson title"), validators=[DataRequired(), Length(max=200)])
    required = BooleanField(_l("Required for completion"))
    section = SelectField(_l("Section"), coerce=int, validate_choice=False, validators=[Optional()])
    file = FileField(_l("Replace the file (MP4/WebM video or PDF)"))
    completion_threshold_pct = IntegerField(
        _l("Video: coverage needed (%)"), validators=[Optional(), NumberRange(min=1, max=100)]
    )
    min_read_seconds = IntegerField(
        _l("Document: minimum reading time (s)"), validators=[Optional(), NumberRange(min=0, max=36000)]
    )
    passing_score_pct = IntegerField(
        _l("Quiz: passing score (%)"), validators=[Optional(), NumberRange(min=0, max=100)]
    )
    max_attempts = IntegerField(
        _l("Quiz: attempts (0 = unlimited)"), validators=[Optional(), NumberRange(min=0, max=100)]
    )
    show_correct_answers = BooleanField(_l("Quiz: after an attempt, also show the correct answers"))

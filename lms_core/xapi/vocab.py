"""IRIs used in the platform's statements: ADL verbs, the xAPI Video Profile, activity types.

Verb displays carry ``en-US`` (the vocabularies' own words) and ``zh-CN``
(shown by Chinese LRS viewers and reports).
"""

from __future__ import annotations

ADL_VERBS = "http://adlnet.gov/expapi/verbs/"
VIDEO = "https://w3id.org/xapi/video"
VIDEO_VERBS = f"{VIDEO}/verbs/"
VIDEO_EXT = f"{VIDEO}/extensions/"

#: verb key -> (IRI, en-US display, zh-CN display)
VERBS: dict[str, tuple[str, str, str]] = {
    "registered": (ADL_VERBS + "registered", "registered", "报名"),
    "launched": (ADL_VERBS + "launched", "launched", "启动"),
    "initialized": (ADL_VERBS + "initialized", "initialized", "初始化"),
    "played": (VIDEO_VERBS + "played", "played", "播放"),
    "paused": (VIDEO_VERBS + "paused", "paused", "暂停"),
    "seeked": (VIDEO_VERBS + "seeked", "seeked", "跳转"),
    "completed": (ADL_VERBS + "completed", "completed", "完成"),
    "terminated": (ADL_VERBS + "terminated", "terminated", "结束"),
    "answered": (ADL_VERBS + "answered", "answered", "作答"),
    "passed": (ADL_VERBS + "passed", "passed", "通过"),
    "failed": (ADL_VERBS + "failed", "failed", "未通过"),
    "responded": (ADL_VERBS + "responded", "responded", "反馈"),
}

#: Activity types (ADL vocabulary, the Video Profile, and the Tin Can registry for surveys).
TYPE_COURSE = "http://adlnet.gov/expapi/activities/course"
TYPE_LESSON = "http://adlnet.gov/expapi/activities/lesson"
TYPE_ASSESSMENT = "http://adlnet.gov/expapi/activities/assessment"
TYPE_QUESTION = "http://adlnet.gov/expapi/activities/question"
TYPE_VIDEO = f"{VIDEO}/activity-type/video"
TYPE_SURVEY = "http://id.tincanapi.com/activitytype/survey"

#: Activity type of a lesson, by lesson kind (one type per activity id, always).
LESSON_TYPES = {
    "video": TYPE_VIDEO,
    "document": TYPE_LESSON,
    "quiz": TYPE_ASSESSMENT,
    "survey": TYPE_SURVEY,
}

# Video Profile extensions.
EXT_SESSION_ID = VIDEO_EXT + "session-id"
EXT_LENGTH = VIDEO_EXT + "length"
EXT_TIME = VIDEO_EXT + "time"
EXT_TIME_FROM = VIDEO_EXT + "time-from"
EXT_TIME_TO = VIDEO_EXT + "time-to"
EXT_PROGRESS = VIDEO_EXT + "progress"
EXT_PLAYED_SEGMENTS = VIDEO_EXT + "played-segments"
EXT_COMPLETION_THRESHOLD = VIDEO_EXT + "completion-threshold"

#: The Video Profile's own completion threshold when none is given (100 %).
VIDEO_DEFAULT_THRESHOLD = 1.0

"""Topic names and topic filters (MQTT 3.1.1 section 4.7)."""


def filter_problem(topic_filter: str):
    """What is wrong with the topic filter C{topic_filter}, or None."""
    if not topic_filter:
        return "a topic must not be empty"
    if "\0" in topic_filter:
        return "a topic must not contain NUL"
    try:
        size = len(topic_filter.encode("utf-8"))
    except UnicodeEncodeError:
        return "a topic must be UTF-8 text"
    if size > 0xFFFF:
        return "a topic must not be longer than 65535 bytes"
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return "'#' must be a whole last level, as in 'home/#'"
        if "+" in level and level != "+":
            return "'+' must be a whole level, as in 'home/+/power'"
    return None


def has_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


def matches(topic_filter: str, topic: str) -> bool:
    """Whether a message's topic name matches a subscription's topic filter."""
    if topic_filter == topic:
        return True
    if "+" not in topic_filter and "#" not in topic_filter:
        return False
    filter_levels = topic_filter.split("/")
    levels = topic.split("/")
    if topic.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(levels):
            return False
        if level != "+" and level != levels[index]:
            return False
    return len(levels) == len(filter_levels)

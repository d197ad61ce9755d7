"""DFEW's seven emotions, with the codes its release uses (1-based, in DFEW order)."""

DFEW_EMOTIONS: tuple[tuple[int, str], ...] = (
    (1, "happy"),
    (2, "sad"),
    (3, "neutral"),
    (4, "angry"),
    (5, "surprise"),
    (6, "disgust"),
    (7, "fear"),
)
DFEW_RARE: tuple[str, ...] = ("disgust", "fear")
EMOTION_NAMES: tuple[str, ...] = tuple(name for _, name in DFEW_EMOTIONS)

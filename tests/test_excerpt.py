"""Excerpts of what arrived: whole when short, else at most 200 characters and the full size."""

from twisted.trial.unittest import TestCase

from senselink.excerpt import MAX_MESSAGE, MAX_SHOWN, clip, excerpt, shown_name


class ClipTests(TestCase):

    def test_short_text_is_whole(self):
        self.assertEqual(clip("x" * MAX_SHOWN), "x" * MAX_SHOWN)

    def test_long_text_is_its_start_and_size(self):
        self.assertEqual(clip("x" * 1000), "x" * 200 + "… (1000 characters)")
        self.assertEqual(clip("y" * 500, MAX_MESSAGE), "y" * 400 + "… (500 characters)")


class ShownNameTests(TestCase):

    def test_a_printable_name_is_itself_or_its_start(self):
        self.assertEqual(shown_name("Ceiling Fan"), "Ceiling Fan")
        self.assertEqual(shown_name("A" * 10_000), "A" * 200 + "… (10000 characters)")

    def test_a_name_with_control_characters_is_its_repr(self):
        self.assertEqual(shown_name("bell\x07"), "'bell\\x07'")
        self.assertEqual(shown_name("\x1b" * 1000),
                         ("'" + "\\x1b" * 50)[:200] + "… (1000 characters)")


class ExcerptTests(TestCase):

    def test_short_values_are_their_repr(self):
        self.assertEqual(excerpt(b"abc"), "b'abc'")
        self.assertEqual(excerpt("on"), "'on'")
        self.assertEqual(excerpt(42.5), "42.5")
        self.assertEqual(excerpt(bytearray(b"ab")), "bytearray(b'ab')")

    def test_long_text_and_bytes(self):
        self.assertEqual(excerpt("x" * 100_000), "'" + "x" * 199 + "… (100000 characters)")
        self.assertEqual(excerpt(b"x" * 60_000), "b'" + "x" * 198 + "… (60000 bytes)")

    def test_at_most_200_characters_whatever_the_repr(self):
        # A byte \xff takes four characters of repr: still 200 characters, and the size in bytes.
        for value in (b"\xff" * 1000, b"\xff" * 60, "\x07" * 1000, "\x07" * 60):
            unit = "bytes" if isinstance(value, bytes) else "characters"
            shown = excerpt(value)
            self.assertEqual(shown, f"{repr(value)[:200]}… ({len(value)} {unit})")

    def test_the_start_of_something_larger(self):
        # The first bytes of a payload whose rest was skipped: the full size is given.
        self.assertEqual(excerpt(b"12", 10_485_760), "b'12'… (10485760 bytes)")
        self.assertEqual(excerpt(b"12", 2), "b'12'")

    def test_other_values_are_a_clipped_repr(self):
        self.assertEqual(excerpt([1] * 1000), repr([1] * 1000)[:200] + "… (3000 characters)")

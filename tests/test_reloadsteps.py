"""reloadsteps.apply: steps in order; on a failure, those taken undone, newest first."""

from twisted.trial import unittest

from senselink.reloadsteps import NotApplied, Step, StepFailed, apply


class ApplyTests(unittest.TestCase):
    def steps(self, trace, failing=None, error=StepFailed("no room"), undo_fails=()):
        def do(name):
            def run():
                if name == failing:
                    raise error
                trace.append(("do", name))
            return run

        def undo(name):
            def run():
                trace.append(("undo", name))
                if name in undo_fails:
                    raise RuntimeError("stuck")
            return run
        return [Step(name, do(name), None if name == "b" else undo(name))
                for name in ("a", "b", "c", "d")]

    def test_all_steps_taken(self):
        trace = []
        taken = apply(self.steps(trace))
        self.assertEqual([step.name for step in taken], ["a", "b", "c", "d"])
        self.assertEqual(trace, [("do", "a"), ("do", "b"), ("do", "c"), ("do", "d")])

    def test_a_failing_step_undoes_those_taken_newest_first(self):
        trace = []
        with self.assertRaises(NotApplied) as raised:
            apply(self.steps(trace, failing="d"))
        self.assertEqual(raised.exception.reason, "no room")
        # b has nothing to undo; d failed, so it is not undone.
        self.assertEqual(trace, [("do", "a"), ("do", "b"), ("do", "c"),
                                 ("undo", "c"), ("undo", "a")])

    def test_an_unexpected_error_names_its_step_and_an_undo_that_fails_stops_no_other(self):
        trace = []
        with self.assertRaises(NotApplied) as raised:
            apply(self.steps(trace, failing="d", error=KeyError("x"), undo_fails=("c",)))
        self.assertEqual(raised.exception.reason, "cannot d: 'x'")
        self.assertEqual(trace[-2:], [("undo", "c"), ("undo", "a")])
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

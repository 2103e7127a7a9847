"""What both front ends (CSL and the Python API) check and collect, written once.

Each rule raises a `RuleError` (a `ValueError`) with one text; the CSL front end re-raises it
as a `CslError` at the source position, the Python API as a `ProgramError` or `LayoutError`.
So a mistake reads the same whichever front end it is made in."""


class RuleError(ValueError):
    """A front-end rule is broken. The text is the whole message, without a position;
    `operand` is the index of the argument at fault, where the rule knows it (a front end
    that has positions points there)."""

    def __init__(self, text: str, operand: int | None = None):
        super().__init__(text)
        self.operand = operand

"""A tiny bank account: a fixture of tools/build_corpus.py's tests."""


class InsufficientFunds(Exception):
    """Raised when a withdrawal is larger than the balance."""


class Account:
    """An account with an owner and a balance in cents."""

    def __init__(self, owner, balance=0):
        self.owner = owner
        self.balance = balance

    def deposit(self, cents):
        if cents <= 0:
            raise ValueError("a deposit must be positive")
        self.balance += cents
        return self.balance

    def withdraw(self, cents):
        if cents > self.balance:
            raise InsufficientFunds(f"{self.owner} has only {self.balance} cents")

        self.balance -= cents
        return self.balance

    def __repr__(self):
        return f"Account({self.owner!r}, {self.balance})"


def transfer(source, target, cents):
    """Moves cents from one account to another, or neither changes."""
    source.withdraw(cents)
    target.deposit(cents)

import ray

ray.init(num_cpus=2)


class InsufficientFunds(Exception):
    def __init__(self, account, missing):
        # Passing every argument on to Exception keeps the error picklable.
        super().__init__(account, missing)
        self.account = account
        self.missing = missing

    def __str__(self):
        return f"account {self.account} is short by {self.missing}"


@ray.remote
class Bank:
    def __init__(self):
        self.balances = {"alice": 100}

    def withdraw(self, account, amount):
        balance = self.balances[account]
        if amount > balance:
            raise InsufficientFunds(account, amount - balance)
        self.balances[account] = balance - amount
        return self.balances[account]


bank = Bank.remote()
assert ray.get(bank.withdraw.remote("alice", 30)) == 70
try:
    ray.get(bank.withdraw.remote("alice", 100))
except InsufficientFunds as e:
    assert e.account == "alice" and e.missing == 30
    assert isinstance(e, ray.exceptions.RayTaskError)
    assert "account alice is short by 30" in str(e)
else:
    raise AssertionError("expected InsufficientFunds")

# The actor survives an exception in one of its methods.
assert ray.get(bank.withdraw.remote("alice", 70)) == 0
try:
    ray.get(bank.withdraw.remote("bob", 1))
except KeyError:
    pass
print("custom exception ok")
ray.shutdown()

"""``flask lms credit replay``: checks that recompute figures from the journal.

Each check is a callable ``check(echo) -> int`` (the number of problems found). The ledger
balances check is here; other modules (the Merkle log in ``proofs``) append theirs to
:data:`CHECKS` so one command runs them all.
"""

from __future__ import annotations

from collections.abc import Callable

Echo = Callable[[str], None]
Check = Callable[[Echo], int]


def check_balances(echo: Echo) -> int:
    """Replay the journal into per-account sums; compare with the cache; ledgers sum to zero."""
    from plugins.credit_bank.ledger import ledger_totals, orphan_resolutions, replay_check

    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        echo(f"replayed {done[0]:,} transfers")

    checked, mismatches = replay_check(progress=progress)
    for m in mismatches:
        echo(f"MISMATCH {m.account}: cached (dp, cp, dpe, cpe) = {m.cached}, replayed = {m.replayed}")
    problems = len(mismatches)
    orphans = orphan_resolutions()
    if orphans:
        echo(f"MISMATCH journal: {orphans} post/void line(s) without an earlier hold")
        problems += 1
    for ledger, (posted, pending) in sorted(ledger_totals().items()):
        if posted or pending:
            echo(f"MISMATCH ledger {ledger} does not sum to zero: posted {posted}, pending {pending}")
            problems += 1
    echo(f"checked {checked} accounts: {problems} mismatch(es)")
    return problems


def check_snapshots(echo: Echo) -> int:
    """Recompute the daily balance snapshots from the journal and compare with the stored rows."""
    from plugins.credit_bank import snapshots

    checked, problems = snapshots.check()
    for p in problems:
        echo(f"MISMATCH snapshot {p}")
    echo(f"checked {checked} daily snapshot row(s): {len(problems)} mismatch(es)")
    return len(problems)


#: The checks ``credit replay`` runs, in order.
CHECKS: list[Check] = [check_balances, check_snapshots]


def run_checks(echo: Echo) -> int:
    """Run every registered check; exit status 1 if any found a problem."""
    problems = sum(check(echo) for check in CHECKS)
    return 1 if problems else 0

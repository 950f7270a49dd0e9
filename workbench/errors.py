"""The root of every error the workbench raises on purpose: `WorkbenchError`.

Each area keeps its errors beside the code that raises them (they carry that area's details:
a spec's problems, a file's bad rows, the refused order) and derives them from this root, so a
caller can catch one type (the command line reports any of them the same way, in
`workbench.cli.common`):

    WorkbenchError
    ├── SpecError                   workbench.strategy.errors      (``problems``: every one)
    ├── IndicatorRegistrationError  workbench.strategy.custom
    ├── TimeframeError              workbench.timeframes
    ├── CandleFileError             workbench.data.files           (``problems``: bad rows)
    ├── DownloadError               workbench.data.download
    ├── StoreError                  workbench.store.errors
    │   ├── SchemaTooNew
    │   ├── StoreLocked
    │   ├── StoreUnavailable                                       (server, login, database)
    │   ├── StorePermission
    │   ├── StrategyLeased                                         (another engine runs it)
    │   └── BackupError             workbench.ops.backup
    ├── BacktestError               workbench.backtest.errors
    │   └── SweepError
    ├── AllocationError             workbench.portfolio.allocation
    ├── LiveError                   workbench.live.session
    ├── HistoryError                workbench.localexchange.history
    ├── ExchangeRejection           workbench.localexchange.errors (Binance's code and msg)
    ├── BrokerError                 workbench.broker.base
    │   ├── OrderRejected                                          (``order``, ``reason``)
    │   └── BrokerUnavailable                                      (transient: ask again)
    │       └── OutcomeUnknown
    ├── AccountError                workbench.auth.accounts        (user management)
    ├── LoginRefused                workbench.auth.accounts        (never says which part)
    ├── PasswordRejected            workbench.auth.passwords
    ├── NotAuthorized               workbench.auth.roles           (who, what, why)
    ├── BadInput                    workbench.auth.acting          (nothing was done)
    ├── ActionFailed                workbench.auth.acting
    │   └── Unsupported
    ├── KeyFileError                workbench.auth.keys
    ├── UploadRejected              workbench.ui.live_strategies
    ├── JobError                    workbench.jobs.pool            (a research job: no result)
    │   ├── JobCancelled
    │   └── JobFailed
    ├── WorkerError                 workbench.jobs.pool            (a job's own exception)
    └── AlertSinkError              workbench.ops.notify           (an apprise URL it cannot use)

Errors about bad input also derive from `ValueError` where they always did (a spec, a grid,
a file), so existing ``except ValueError`` code keeps working. An error that means a bug in the
workbench (`workbench.broker.models.OrderTransitionError`) stays outside the tree, so it shows
its traceback.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Something the workbench refuses or cannot do, said as what went wrong and why."""

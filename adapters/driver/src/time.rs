//! Deadlines over any future.

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use futures_util::future::{Either, select};

use crate::Runtime;

/// The deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// The instant `timeout` from now; a timeout too large to represent means about a year.
pub(crate) fn after<R: Runtime>(rt: &R, timeout: Duration) -> Instant {
    let now = rt.now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
}

/// Runs `fut` until `deadline`.
pub(crate) async fn until<R: Runtime, F: Future>(
    rt: &R,
    deadline: Instant,
    fut: F,
) -> Result<F::Output, Elapsed> {
    if rt.now() >= deadline {
        return Err(Elapsed);
    }
    match select(pin!(fut), pin!(rt.sleep_until(deadline))).await {
        Either::Left((output, _)) => Ok(output),
        Either::Right(((), _)) => Err(Elapsed),
    }
}

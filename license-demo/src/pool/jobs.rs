//! The messages between the facade and the writer thread: a `Job` asks for one operation, a
//! `Done` holds its result until the batch commits, then answers the caller.

use super::types::{
    BorrowOptions, BorrowOutcome, ChargesPage, ChargesQuery, OpenBorrow, Owned, Owner, PoolError,
    Returned,
};
use tokio::sync::oneshot;

pub(super) type Reply<T> = oneshot::Sender<Result<T, PoolError>>;

pub(super) enum Job {
    Borrow {
        tool: usize,
        user: String,
        options: BorrowOptions,
        reply: Reply<BorrowOutcome>,
    },
    Return {
        id: String,
        owner: Owner,
        reply: Reply<Owned<Returned>>,
    },
    Heartbeat {
        id: String,
        owner: Owner,
        reply: Reply<Owned<Option<String>>>,
    },
    OpenBorrows {
        filter: Owner,
        reply: Reply<Vec<OpenBorrow>>,
    },
    Sweep {
        reply: Reply<usize>,
    },
    /// Lists run here only for a `:memory:` database (files have readers, see `reader`).
    Charges {
        query: ChargesQuery,
        reply: Reply<ChargesPage>,
    },
}

/// What a job did, kept until the batch commits.
pub(super) enum Done {
    Borrow(Reply<BorrowOutcome>, Result<BorrowOutcome, PoolError>),
    Return(Reply<Owned<Returned>>, Result<Owned<Returned>, PoolError>),
    Heartbeat(
        Reply<Owned<Option<String>>>,
        Result<Owned<Option<String>>, PoolError>,
    ),
    Sweep(Reply<usize>, Result<usize, PoolError>),
    OpenBorrows(Reply<Vec<OpenBorrow>>, Result<Vec<OpenBorrow>, PoolError>),
    Charges(Reply<ChargesPage>, Result<ChargesPage, PoolError>),
}

impl Done {
    pub(super) fn error(&self) -> Option<&PoolError> {
        match self {
            Done::Borrow(_, Err(e))
            | Done::Return(_, Err(e))
            | Done::Heartbeat(_, Err(e))
            | Done::Sweep(_, Err(e))
            | Done::OpenBorrows(_, Err(e))
            | Done::Charges(_, Err(e)) => Some(e),
            _ => None,
        }
    }

    /// After a rollback: writes report the error; reads keep their (still true) answer.
    pub(super) fn fail_writes(self, err: PoolError) {
        match self {
            Done::Borrow(reply, _) => {
                let _ = reply.send(Err(err));
            }
            Done::Return(reply, _) => {
                let _ = reply.send(Err(err));
            }
            Done::Heartbeat(reply, _) => {
                let _ = reply.send(Err(err));
            }
            Done::Sweep(reply, _) => {
                let _ = reply.send(Err(err));
            }
            other => other.send(),
        }
    }

    // A send fails only when the caller gave up waiting (client disconnected); nothing to do.
    pub(super) fn send(self) {
        match self {
            Done::Borrow(reply, r) => {
                let _ = reply.send(r);
            }
            Done::Return(reply, r) => {
                let _ = reply.send(r);
            }
            Done::Heartbeat(reply, r) => {
                let _ = reply.send(r);
            }
            Done::Sweep(reply, r) => {
                let _ = reply.send(r);
            }
            Done::OpenBorrows(reply, r) => {
                let _ = reply.send(r);
            }
            Done::Charges(reply, r) => {
                let _ = reply.send(r);
            }
        }
    }
}

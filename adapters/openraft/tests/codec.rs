//! Every openraft request, response and error this crate sends round-trips through the frame
//! codec (postcard is not self-describing: a serde feature that needs `deserialize_any` would
//! only fail at run time, so each type is checked here).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{
    AnyError, BasicNode, CommittedLeaderId, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId,
    Membership, SnapshotMeta, SnapshotSegmentId, StorageError, StorageIOError, StoredMembership,
    Vote,
};
use proptest::prelude::*;
use rafthttp_kv::{Request, TypeConfig};
use rafthttp_openraft::codec::{self, Kind};
use rafthttp_tokio::core::Decoded;
use rafthttp_tokio::core::frame::FrameDecoder;
use serde::Serialize;
use serde::de::DeserializeOwned;

const MAX: usize = 1 << 20;

/// Encodes `value` as a frame of `kind`, decodes the frame and the payload, and checks that
/// what comes back is what went in (by `Debug`, which every openraft type has; some errors have
/// no `PartialEq`).
fn round_trip<T: Serialize + DeserializeOwned + Debug>(kind: u8, value: &T) {
    let mut out = Vec::new();
    codec::encode(u64::MAX - 1, kind, value, MAX, &mut out).expect("encode");
    let decoder = FrameDecoder::new(MAX);
    let Ok(Decoded::Complete {
        value: frame,
        consumed,
    }) = codec::decode_frame(&decoder, &out)
    else {
        panic!("a complete frame");
    };
    assert_eq!(consumed, out.len());
    assert_eq!(frame.id, u64::MAX - 1);
    let back: T = codec::decode(frame.payload).expect("decode");
    assert_eq!(format!("{back:?}"), format!("{value:?}"));
}

fn vote() -> impl Strategy<Value = Vote<u64>> {
    (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(term, node, committed)| {
        if committed {
            Vote::new_committed(term, node)
        } else {
            Vote::new(term, node)
        }
    })
}

fn log_id() -> impl Strategy<Value = LogId<u64>> {
    (any::<u64>(), any::<u64>(), any::<u64>())
        .prop_map(|(term, node, index)| LogId::new(CommittedLeaderId::new(term, node), index))
}

fn membership() -> impl Strategy<Value = Membership<u64, BasicNode>> {
    (
        proptest::collection::vec(proptest::collection::btree_set(0u64..8, 1..4), 1..3),
        proptest::collection::btree_map(0u64..12, "[a-z0-9.:]{0,24}", 0..6),
    )
        .prop_map(|(configs, nodes)| {
            let mut all: BTreeMap<u64, BasicNode> = configs
                .iter()
                .flatten()
                .map(|&id| (id, BasicNode::new(format!("127.0.0.1:{id}"))))
                .collect();
            for (id, addr) in nodes {
                all.entry(id).or_insert_with(|| BasicNode::new(addr));
            }
            Membership::new(configs, all)
        })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (".{0,16}", ".{0,64}").prop_map(|(key, value)| Request::Set { key, value }),
        ".{0,16}".prop_map(|key| Request::Delete { key }),
    ]
}

fn entry() -> impl Strategy<Value = Entry<TypeConfig>> {
    let payload = prop_oneof![
        Just(EntryPayload::Blank),
        request().prop_map(EntryPayload::Normal),
        membership().prop_map(EntryPayload::Membership),
    ];
    (log_id(), payload).prop_map(|(log_id, payload)| Entry { log_id, payload })
}

fn snapshot_meta() -> impl Strategy<Value = SnapshotMeta<u64, BasicNode>> {
    (
        proptest::option::of(log_id()),
        proptest::option::of(log_id()),
        membership(),
        ".{0,32}",
    )
        .prop_map(
            |(last_log_id, membership_log_id, membership, snapshot_id)| SnapshotMeta {
                last_log_id,
                last_membership: StoredMembership::new(membership_log_id, membership),
                snapshot_id,
            },
        )
}

fn fatal() -> impl Strategy<Value = Fatal<u64>> {
    prop_oneof![
        Just(Fatal::Panicked),
        Just(Fatal::Stopped),
        (".{0,32}", proptest::option::of(log_id())).prop_map(|(message, log_id)| {
            let source = AnyError::error(message);
            let io = match log_id {
                Some(log_id) => {
                    StorageIOError::new(ErrorSubject::Log(log_id), ErrorVerb::Write, source)
                }
                None => StorageIOError::read(source),
            };
            Fatal::StorageError(StorageError::IO { source: io })
        }),
    ]
}

fn segment() -> impl Strategy<Value = SnapshotSegmentId> {
    (".{0,16}", any::<u64>()).prop_map(|(id, offset)| SnapshotSegmentId { id, offset })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn vote_requests(vote in vote(), last in proptest::option::of(log_id())) {
        round_trip(Kind::Vote.request(), &VoteRequest { vote, last_log_id: last });
    }

    #[test]
    fn vote_answers(
        vote in vote(),
        granted in any::<bool>(),
        last in proptest::option::of(log_id()),
        error in fatal(),
        failed in any::<bool>(),
    ) {
        let answer: Result<VoteResponse<u64>, RaftError<u64>> = if failed {
            Err(RaftError::Fatal(error))
        } else {
            Ok(VoteResponse { vote, vote_granted: granted, last_log_id: last })
        };
        round_trip(Kind::Vote.answer(), &answer);
    }

    #[test]
    fn append_entries_requests(
        vote in vote(),
        prev in proptest::option::of(log_id()),
        entries in proptest::collection::vec(entry(), 0..8),
        commit in proptest::option::of(log_id()),
    ) {
        let request = AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: prev,
            entries,
            leader_commit: commit,
        };
        round_trip(Kind::AppendEntries.request(), &request);
    }

    #[test]
    fn append_entries_answers(
        which in 0u8..5,
        vote in vote(),
        partial in proptest::option::of(log_id()),
        error in fatal(),
    ) {
        let answer: Result<AppendEntriesResponse<u64>, RaftError<u64>> = match which {
            0 => Ok(AppendEntriesResponse::Success),
            1 => Ok(AppendEntriesResponse::PartialSuccess(partial)),
            2 => Ok(AppendEntriesResponse::Conflict),
            3 => Ok(AppendEntriesResponse::HigherVote(vote)),
            _ => Err(RaftError::Fatal(error)),
        };
        round_trip(Kind::AppendEntries.answer(), &answer);
    }

    #[test]
    fn install_snapshot_requests(
        vote in vote(),
        meta in snapshot_meta(),
        offset in any::<u64>(),
        data in proptest::collection::vec(any::<u8>(), 0..512),
        done in any::<bool>(),
    ) {
        let request = InstallSnapshotRequest::<TypeConfig> { vote, meta, offset, data, done };
        round_trip(Kind::InstallSnapshot.request(), &request);
    }

    #[test]
    fn install_snapshot_answers(
        which in 0u8..3,
        vote in vote(),
        expect in segment(),
        got in segment(),
        error in fatal(),
    ) {
        let answer: Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> =
            match which {
                0 => Ok(InstallSnapshotResponse { vote }),
                1 => Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(
                    SnapshotMismatch { expect, got },
                ))),
                _ => Err(RaftError::Fatal(error)),
            };
        round_trip(Kind::InstallSnapshot.answer(), &answer);
    }
}

#[test]
fn membership_with_joint_configs_round_trips() {
    let joint = Membership::new(
        vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3, 4])],
        BTreeMap::from([(5, BasicNode::new("127.0.0.1:5"))]),
    );
    let entry = Entry::<TypeConfig> {
        log_id: LogId::new(CommittedLeaderId::new(3, 1), 9),
        payload: EntryPayload::Membership(joint),
    };
    round_trip(Kind::AppendEntries.request(), &entry);
}

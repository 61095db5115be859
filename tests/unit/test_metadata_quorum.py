"""kafka-metadata-quorum's output formats, against text written out from Kafka 4.x's rules."""

from __future__ import annotations

import uuid

import pytest

from tools.common import ToolError
from tools.metadata_quorum import (
    QuorumDescription, ReplicaState, endpoint_text, format_replication, format_status, format_table, main,
    uuid_text,
)

DIRECTORY_1 = "O6GnF0wOSfaaTsPxqBUTtA"
DIRECTORY_2 = "J8aAPcfkQFuLNZIqrsCw4w"
ZERO = "AAAAAAAAAAAAAAAAAAAAAA"
NOW_MS = 1_700_000_010_000


def single_voter(log_end_offset: int = 2) -> QuorumDescription:
    leader = ReplicaState(1, DIRECTORY_1, log_end_offset, NOW_MS - 5, NOW_MS - 5)
    return QuorumDescription(1, 3, log_end_offset, (leader,),
                             endpoints={1: ("CONTROLLER://127.0.0.1:9093",)})


def three_voters_and_an_observer() -> QuorumDescription:
    voters = (
        ReplicaState(2, ZERO, 90, NOW_MS - 400, NOW_MS - 1400),
        ReplicaState(1, DIRECTORY_1, 100, NOW_MS, NOW_MS),
        ReplicaState(3, DIRECTORY_2, 100, None, None),
    )
    observers = (ReplicaState(7, ZERO, 100, NOW_MS - 50, NOW_MS - 50),)
    return QuorumDescription(1, 8, 95, voters, observers, endpoints={
        1: ("CONTROLLER://c1:9093",), 2: ("CONTROLLER://c2:9093", "SECURE://[::1]:9094"),
    })


def test_status_of_a_single_voter_is_kafkas_block() -> None:
    assert format_status("K6V1JDsZSnKGtJEP6ad20A", single_voter()) == (
        "ClusterId:              K6V1JDsZSnKGtJEP6ad20A\n"
        "LeaderId:               1\n"
        "LeaderEpoch:            3\n"
        "HighWatermark:          2\n"
        "MaxFollowerLag:         0\n"
        "MaxFollowerLagTimeMs:   0\n"
        f'CurrentVoters:          [{{"id": 1, "directoryId": "{DIRECTORY_1}", '
        '"endpoints": ["CONTROLLER://127.0.0.1:9093"]}]\n'
        "CurrentObservers:       []"
    )


def test_status_lag_and_voter_text_with_followers() -> None:
    lines = format_status("cluster", three_voters_and_an_observer()).splitlines()
    assert lines[4] == "MaxFollowerLag:         10", "leader end 100 minus the smallest voter end 90"
    assert lines[5] == "MaxFollowerLagTimeMs:   1400", "leader caught up at now, voter 2 at now - 1400"
    # A zero directory id is left out, IPv6 hosts are bracketed, a node without endpoints has none.
    assert lines[6] == (
        'CurrentVoters:          [{"id": 2, "endpoints": ["CONTROLLER://c2:9093", "SECURE://[::1]:9094"]}, '
        f'{{"id": 1, "directoryId": "{DIRECTORY_1}", "endpoints": ["CONTROLLER://c1:9093"]}}, '
        f'{{"id": 3, "directoryId": "{DIRECTORY_2}"}}]'
    )
    assert lines[7] == 'CurrentObservers:       [{"id": 7}]'


def test_lag_time_is_unknown_when_the_lagging_voter_never_caught_up() -> None:
    quorum = three_voters_and_an_observer()
    leader, lagging = quorum.voters[1], ReplicaState(3, DIRECTORY_2, 40, None, None)
    quorum = QuorumDescription(1, 8, 95, (leader, lagging))
    assert format_status("c", quorum).splitlines()[4:6] == ["MaxFollowerLag:         60",
                                                           "MaxFollowerLagTimeMs:   -1"]


def test_lag_time_is_zero_only_when_the_leader_is_the_first_smallest_voter() -> None:
    leader = ReplicaState(1, ZERO, 50, NOW_MS, NOW_MS)
    follower = ReplicaState(2, ZERO, 50, NOW_MS - 30, NOW_MS - 30)
    leader_first = QuorumDescription(1, 1, 50, (leader, follower))
    follower_first = QuorumDescription(1, 1, 50, (follower, leader))
    assert format_status("c", leader_first).splitlines()[5] == "MaxFollowerLagTimeMs:   0"
    assert format_status("c", follower_first).splitlines()[5] == "MaxFollowerLagTimeMs:   30"


def test_replication_table_rows_are_leader_followers_observers_padded_and_tab_ended() -> None:
    assert format_replication(three_voters_and_an_observer(), False, NOW_MS) == (
        "NodeId\tDirectoryId           \tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t\n"
        f"1     \t{DIRECTORY_1}\t100         \t0  \t{NOW_MS}     \t{NOW_MS}        \tLeader  \t\n"
        f"2     \t{ZERO}\t90          \t10 \t{NOW_MS - 400}     \t{NOW_MS - 1400}        \tFollower\t\n"
        f"3     \t{DIRECTORY_2}\t100         \t0  \t-1                \t-1                   \tFollower\t\n"
        f"7     \t{ZERO}\t100         \t0  \t{NOW_MS - 50}     \t{NOW_MS - 50}        \tObserver\t\n"
    )


def test_human_readable_replication_shows_ages() -> None:
    rows = format_replication(three_voters_and_an_observer(), True, NOW_MS).splitlines()
    assert rows[1].split("\t")[4:6] == ["0 ms ago          ", "0 ms ago             "]
    assert rows[2].split("\t")[4:6] == ["400 ms ago        ", "1400 ms ago          "]
    assert rows[3].split("\t")[4:6] == ["-1                ", "-1                   "]


def test_human_readable_refuses_a_timestamp_from_the_future() -> None:
    quorum = single_voter()
    with pytest.raises(ToolError) as error:
        format_replication(quorum, True, NOW_MS - 1000)
    assert str(error.value) == (
        "Error while computing relative time, possible drift in system clock.\n"
        f"Current timestamp is {NOW_MS - 1000}, last fetch timestamp is {NOW_MS - 5}")


def test_a_leader_missing_from_the_voters_is_an_error_not_a_crash() -> None:
    quorum = QuorumDescription(4, 1, 0, (ReplicaState(1, ZERO, 0),))
    with pytest.raises(ToolError, match="leader 4 is not among the voters"):
        format_status("c", quorum)


def test_table_columns_widen_to_their_longest_cell() -> None:
    assert format_table(("A", "Bee"), [["long", "x"]]) == "A   \tBee\t\nlong\tx  \t\n"


def test_kafka_text_forms_of_ids_and_endpoints() -> None:
    assert uuid_text(None) == ZERO
    assert uuid_text(uuid.UUID("3ba1a717-4c0e-49f6-9a4e-c3f1a81513b4")) == DIRECTORY_1
    assert endpoint_text("CONTROLLER", "::1", 9093) == "CONTROLLER://[::1]:9093"
    assert endpoint_text("CONTROLLER", "host", 9093) == "CONTROLLER://host:9093"


@pytest.mark.parametrize("args, message", [
    (["describe", "--status", "--replication"],
     "Only one of --status or --replication should be specified with describe sub-command"),
    (["describe"], "One of --status or --replication must be specified with describe sub-command"),
    (["describe", "--status", "--human-readable"],
     "The option --human-readable is only supported along with --replication"),
])
def test_describe_option_errors_use_kafkas_words(args, message, capsys) -> None:
    assert main(["--bootstrap-server", "localhost:1", *args]) == 1
    assert capsys.readouterr().err == message + "\n"


def test_a_bootstrap_option_is_required(capsys) -> None:
    assert main(["describe", "--status"]) == 1
    assert "--bootstrap-server" in capsys.readouterr().err

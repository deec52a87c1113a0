// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Lifecycle of a task.
enum TaskStatus {
    None,
    Active,
    Completed
}

/// @notice Phase of one round (see docs/PROTOCOL.md, "Round phases").
enum Phase {
    None,
    TrainerCommit,
    TrainerReveal,
    AggregatorCommit,
    AggregatorReveal,
    Finalized,
    Failed
}

/// @notice State of a trainer in one round.
enum TrainerStatus {
    None,
    Committed,
    Revealed,
    Claimed,
    Slashed
}

/// @notice State of an aggregator in one round.
enum AggregatorStatus {
    None,
    Committed,
    Revealed,
    Slashed,
    Claimed
}

/// @notice What a sponsor submits to `createTask` (field order is ABI: do not reorder).
struct TaskParams {
    string architecture;
    string initialModelCid;
    bytes32 initialModelDigest;
    string validationCid;
    bytes32 validationDigest;
    uint256 rewardBudget;
    uint32 numRounds;
    uint32 minTrainers;
    uint32 maxTrainers;
    uint32 aggregatorQuorum;
    uint32 maxAggregators;
    uint64 commitDuration;
    uint64 revealDuration;
    uint64 aggregatorCommitDuration;
    uint64 aggregatorRevealDuration;
    uint256 minTrainerStake;
    uint256 minAggregatorStake;
    string strategy;
    bytes strategyParams;
    uint64 dpEpsilonMilli;
    uint64 dpDeltaE18;
    uint64 maxSamples;
    /// @notice Largest model file of the task in bytes (initial model, updates, results), at most the policy's
    ///         `maxModelBytes`; fedchain's tools set it to the architecture's bound (`8 + 2^20 + 4 * parameters`).
    uint64 maxModelBytes;
}

/// @notice What an aggregator reveals (field order is ABI: do not reorder). `totalWeight` is the sum of
///         `score * weight` over the leaves of `scoresRoot` (each leaf `(trainer, score, weight)`).
struct AggregateResult {
    string resultCid;
    bytes32 resultDigest;
    bytes32 scoresRoot;
    uint256 totalWeight;
    uint32 accepted;
    uint32 rejected;
    uint32 accuracyPpm;
    uint64 lossMicro;
}

/// @notice A task as returned by `getTask`.
struct TaskInfo {
    address sponsor;
    TaskStatus status;
    uint32 currentRound;
    string globalModelCid;
    bytes32 globalModelDigest;
    uint256 remainingBudget;
    TaskParams params;
}

/// @notice A round as returned by `getRound`. The result fields are those of the accepted result (copied from the
///         AggregatorCommittee when the round finalizes); `failedPhase` is the phase the round failed in. `phaseDeadline` is the
///         phase's deadline before any guardian pause: the deadline in force is `phaseDeadline` plus the time
///         the protocol was paused since the phase began (`pausedAtEntry` is the policy's `pausedTotal` then).
///         `roundBudget` is what the round allocated in all (trainers, committee and protocol fee; see the
///         RewardVault); `settledAt` is when bonds of the round can be released and rejections no longer slashed.
///         Field order is storage layout: what a commit or reveal reads and writes (phase, deadline, counters)
///         shares the first slot.
struct RoundInfo {
    Phase phase;
    uint64 phaseDeadline;
    uint64 pausedAtEntry;
    uint32 committed;
    uint32 revealed;
    uint64 drawBlock;
    uint64 finalizedAt;
    uint64 settledAt;
    bytes32 acceptedKey;
    string resultCid;
    bytes32 resultDigest;
    bytes32 scoresRoot;
    uint256 totalWeight;
    uint32 accepted;
    uint32 rejected;
    uint32 accuracyPpm;
    uint64 lossMicro;
    uint256 roundBudget;
    bytes32 failureReason;
    Phase failedPhase;
}

/// @notice A trainer's entry in one round as `getTrainerEntry` returns it: `commitment` is the commitment's top 240
///         bits (low 16 bits zero) while `Committed`, else zero; `numSamples` is set by the reveal (0: never revealed);
///         `bond` is the stake reserved for it (0 once released or slashed). The update's CID and digest are in the
///         `UpdateRevealed` event (storage keeps one word per trainer and round: see TrainerSlots).
struct TrainerEntry {
    TrainerStatus status;
    bytes32 commitment;
    uint64 numSamples;
    uint256 bond;
}

/// @notice An aggregator's entry in one round; `bond` is the stake reserved for it (0 once released or slashed).
struct AggregatorEntry {
    AggregatorStatus status;
    bytes32 commitment;
    bytes32 resultKey;
    uint256 bond;
}

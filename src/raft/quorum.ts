// Pure majority math over a set of voters: the highest index a majority has acknowledged,
// and the outcome of an election. No state; the leader and candidates call these.
import type { NodeId } from './types.ts'

/** VoteResult is the state of an election. */
export type VoteResult = 'won' | 'lost' | 'pending'

/** majority is the smallest number of voters that forms a quorum. */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1
}

/** committedIndex is the largest index acknowledged by a majority of voters. With no voters
 * it is Infinity (nothing constrains it; callers never commit with an empty configuration). */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return Infinity
  const matches = voters.map(matchOf).sort((a, b) => b - a)
  return matches[majority(voters.length) - 1] as number
}

/** voteResult counts granted and refused votes among voters. */
export function voteResult(
  voters: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  if (voters.length === 0) return 'won'
  let granted = 0
  let refused = 0
  for (const v of voters) {
    const g = votes.get(v)
    if (g === true) granted++
    else if (g === false) refused++
  }
  const q = majority(voters.length)
  if (granted >= q) return 'won'
  if (voters.length - refused < q) return 'lost'
  return 'pending'
}

/** hasQuorum tells whether the ids in acked include a majority of voters. */
export function hasQuorum(voters: readonly NodeId[], acked: (id: NodeId) => boolean): boolean {
  return voters.filter(acked).length >= majority(voters.length)
}

// The ROLE column of `oncekv status`: a member that does not answer shows what the
// configuration says of it, not a role it may no longer have.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { dbRole } from './status.ts'

describe('status ROLE', () => {
  it('is the role of a member that answers', () => {
    assert.equal(dbRole(true, 'voter', 'up'), 'leader')
    assert.equal(dbRole(false, 'voter', 'up'), 'follower')
    assert.equal(dbRole(false, 'voter', 'suspect'), 'follower')
    assert.equal(dbRole(false, 'learner', 'up'), 'learner')
  })

  it('is the suffrage of a member that is down, even one last seen leading', () => {
    assert.equal(dbRole(true, 'voter', 'down'), 'voter')
    assert.equal(dbRole(false, 'voter', 'down'), 'voter')
    assert.equal(dbRole(false, 'learner', 'down'), 'learner')
  })
})

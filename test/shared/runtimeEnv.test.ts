// The environment of a process that runs the model: glibc's huge-page tunable added on Linux, nothing taken away.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runtimeEnv } from '../../src/shared/runtimeEnv';

test('the malloc tunable joins GLIBC_TUNABLES on Linux, beside what is set, once; elsewhere the environment is as given', () => {
  assert.equal(runtimeEnv({ PATH: '/bin' }, 'linux').GLIBC_TUNABLES, 'glibc.malloc.hugetlb=1');
  assert.equal(runtimeEnv({ PATH: '/bin' }, 'linux').PATH, '/bin');
  assert.equal(runtimeEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, 'linux').GLIBC_TUNABLES, 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1');
  // A user's own choice of the same tunable stands.
  const own = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' };
  assert.equal(runtimeEnv(own, 'linux'), own);
  const once = runtimeEnv({}, 'linux');
  assert.equal(runtimeEnv(once, 'linux'), once);
  const mac = { PATH: '/bin' };
  assert.equal(runtimeEnv(mac, 'darwin'), mac);
});

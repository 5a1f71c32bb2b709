import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstBlockedFolder } from './postgres-user-access.js';

describe('firstBlockedFolder (POSIX search permission on every folder of a path)', () => {
  let top: string;
  beforeEach(async () => {
    top = await mkdtemp(join(tmpdir(), 'pg-access-')); // mode 700, like `mktemp -d`
    await mkdir(join(top, 'a', 'b'), { recursive: true, mode: 0o755 });
  });
  afterEach(() => rm(top, { recursive: true, force: true }));

  const stranger = { uid: 4_000_001, gids: [4_000_001] };

  it('names the mode-700 folder a stranger cannot enter', async () => {
    expect(await firstBlockedFolder(join(top, 'a', 'b'), stranger)).toEqual({ folder: top, mode: 0o700, uid: process.getuid!() });
  });

  it('passes once the folder can be searched by others (o+x), and for folders not created yet', async () => {
    await chmod(top, 0o711);
    expect(await firstBlockedFolder(join(top, 'a', 'b'), stranger)).toBeNull();
    expect(await firstBlockedFolder(join(top, 'a', 'not-yet', 'deeper'), stranger)).toBeNull();
  });

  it('uses the owner bits for the owner and the group bits for a member of the group', async () => {
    await chmod(top, 0o710);
    const { gid } = { gid: 4_000_002 };
    if (process.getuid?.() === 0) {
      await chown(top, process.getuid(), gid);
      expect(await firstBlockedFolder(top, { uid: 4_000_003, gids: [gid] })).toBeNull();
    }
    expect(await firstBlockedFolder(top, stranger)).toMatchObject({ folder: top });
    expect(await firstBlockedFolder(top, { uid: process.getuid!(), gids: [] })).toBeNull();
  });
});

import fc from 'fast-check';
import { findDuplicateMember } from './duplicate-members.js';

describe('findDuplicateMember', () => {
  it.each([
    ['{"otp_code":"111111","otp_code":"222222"}', 'otp_code'],
    ['{"user":{"email":"a@example.com"},"device":{"type":"othr"},"user":{"email":"b@example.com"}}', 'user'],
    ['{"user":{"email":"a@example.com","email":"b@example.com"},"device":{"type":"othr"}}', 'user.email'],
    ['{"a":[{"x":1},{"x":1,"x":2}]}', 'a.1.x'],
    ['{"a":"\\u0061","\\u0061":1}', 'a'], // the same name, once escaped
    ['{"k\\"":1,"k\\"":2}', 'k"'], // an escaped quote inside a name
    ['{"k\\\\":1,"k\\\\":2}', 'k\\'], // a name ending in a backslash
    [' { "a" : 1 , "b" : { } , "a" : 2 } ', 'a'],
    ['{"__proto__":1,"__proto__":2}', '__proto__'],
  ])('%s → %s', (text, member) => {
    JSON.parse(text); // valid JSON, as the caller guarantees
    expect(findDuplicateMember(text)).toBe(member);
  });

  it.each([
    '{}',
    '[]',
    '{"user":{"email":"a@example.com"},"device":{"type":"othr","email":"x"}}', // one name in two objects
    '{"a":["a","a",{"a":1}],"b":"a"}', // strings equal to a name are not names
    '{"a":"\\"a\\":1,\\"a\\":2"}', // a JSON text inside a string
    '{"a":{},"b":[{}, "x", {"a":1}]}',
    '{"A":1,"a":2}', // names are case-sensitive
  ])('%s has none', (text) => {
    JSON.parse(text);
    expect(findDuplicateMember(text)).toBeNull();
  });

  it('finds a duplicate exactly when some object of a generated JSON text repeats a name', () => {
    type Node = number | string | null | { items: Node[] } | { members: [string, Node][] };
    const names = fc.constantFrom('a', 'b', 'user', 'email', '\u00e9', 'a"b', 'x\\', 'a\u0000');
    const { node } = fc.letrec<{ node: Node }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.constantFrom(1, 'a', null, 'user', '"a":1'),
        fc.record({ items: fc.array(tie('node'), { maxLength: 3 }) }),
        fc.record({ members: fc.array(fc.tuple(names, tie('node')), { maxLength: 4 }) }),
      ),
    }));
    const write = (n: Node): string =>
      n !== null && typeof n === 'object'
        ? 'items' in n
          ? `[${n.items.map(write).join(',')}]`
          : `{${n.members.map(([name, child]) => `${JSON.stringify(name)} : ${write(child)}`).join(' ,')}}`
        : JSON.stringify(n);
    const repeats = (n: Node): boolean =>
      n !== null && typeof n === 'object'
        ? 'items' in n
          ? n.items.some(repeats)
          : new Set(n.members.map(([name]) => name)).size < n.members.length || n.members.some(([, child]) => repeats(child))
        : false;
    fc.assert(
      fc.property(node, (n) => {
        const text = write(n);
        JSON.parse(text);
        expect(findDuplicateMember(text) !== null).toBe(repeats(n));
      }),
      { numRuns: 2_000 },
    );
  });
});

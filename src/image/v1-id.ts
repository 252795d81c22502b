import { type Digest, sha256 } from '../util/digest.js';

/** The chain IDs of a layer stack: the first diffID, then sha256("<parent chain> <diffID>"). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const chain: Digest[] = [];
  for (const diffId of diffIds) chain.push(chain.length === 0 ? diffId : sha256(`${chain[chain.length - 1]} ${diffId}`));
  return chain;
}

/** The members of a JSON object's top level, each value's text exactly as written (Go's compact form). */
function topLevelMembers(text: string): [string, string][] | undefined {
  const members: [string, string][] = [];
  let i = text.indexOf('{') + 1;
  if (i === 0) return undefined;
  for (;;) {
    while (i < text.length && ' \t\r\n,'.includes(text[i]!)) i++;
    if (i >= text.length) return undefined;
    if (text[i] === '}') return members;
    if (text[i] !== '"') return undefined;
    const keyStart = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    const key = JSON.parse(text.slice(keyStart, ++i)) as string;
    while (i < text.length && text[i] !== ':') i++;
    const valueStart = ++i;
    let depth = 0;
    let inString = false;
    for (; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if ((c === '}' || c === ']') && depth-- === 0) break;
      else if (c === ',' && depth === 0) break;
    }
    members.push([key, text.slice(valueStart, i).trim()]);
  }
}

/**
 * Which layer of a stack a Docker ≤ 24 save stores under `<v1Id>/`: its index in `chain`, told
 * from the directory's `json` alone, before the layer's bytes arrive. moby's v1.CreateID names
 * the directory by the sha256 of that JSON as it was before saving (no `id`; `parent` as a
 * digest; `layer_id`, the chain ID, added; keys sorted; `os` added only after, below the top
 * layer). Undefined when no layer matches: the name is then no proof of anything.
 */
export function layerOfV1Json(v1Id: string, json: string, chain: readonly Digest[]): number | undefined {
  let fields: Map<string, string>;
  try {
    const members = topLevelMembers(json);
    if (!members) return undefined;
    fields = new Map(members.filter(([key]) => key !== 'id' && key !== 'layer_id'));
    const parent = fields.get('parent');
    if (parent !== undefined) {
      const hex = JSON.parse(parent) as unknown;
      if (typeof hex !== 'string') return undefined;
      fields.set('parent', JSON.stringify(`sha256:${hex}`));
    }
  } catch {
    return undefined; // not JSON as Go writes it: the name proves nothing
  }
  const variants = [fields, new Map([...fields].filter(([key]) => key !== 'os'))];
  for (const variant of variants) {
    for (const [index, chainId] of chain.entries()) {
      variant.set('layer_id', JSON.stringify(chainId));
      const keys = [...variant.keys()].sort();
      const text = `{${keys.map((key) => `${JSON.stringify(key)}:${variant.get(key)}`).join(',')}}`;
      if (sha256(text) === `sha256:${v1Id}`) return index;
    }
  }
  return undefined;
}

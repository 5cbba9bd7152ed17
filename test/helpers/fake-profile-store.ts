import { BackendUnavailableError } from '../../shared/errors.js';
import type {
  ProfileBins,
  ProfileKey,
  ProfileStore,
  StoreCallOptions,
} from '../../shared/profiles/profile-store.js';

/** An in-memory ProfileStore that records its calls and can be told to fail. */
export class FakeProfileStore implements ProfileStore {
  readonly name = 'fake';
  readonly calls: ProfileKey[][] = [];
  /** How many times ping was called. */
  pings = 0;
  failing = false;
  /** Answers this much later (a slow store). */
  delayMs = 0;
  private readonly records = new Map<string, ProfileBins>();

  /** Stores a record under a typed key: an integer key is another record than the same digits. */
  put(set: string, id: string, bins: ProfileBins, keyType: 'string' | 'integer' = 'string'): this {
    this.records.set(`${set}\u0000${keyType}\u0000${id}`, bins);
    return this;
  }

  async getMany(keys: readonly ProfileKey[], _options: StoreCallOptions) {
    this.calls.push([...keys]);
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.failing) throw new BackendUnavailableError('fake', 'store is down');
    return keys.map((k) => this.records.get(`${k.set}\u0000${k.keyType}\u0000${k.id}`));
  }

  async ping(): Promise<void> {
    this.pings++;
    if (this.failing) throw new BackendUnavailableError('fake', 'store is down');
  }

  async close(): Promise<void> {}
}

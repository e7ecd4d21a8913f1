/** Listeners of a store's changes, keyed by thing. */
export class ChangeListeners {
  private readonly listeners: ((thing: string) => void)[] = [];

  add(listener: (thing: string) => void): void {
    this.listeners.push(listener);
  }

  emit(thing: string): void {
    for (const l of this.listeners) l(thing);
  }
}

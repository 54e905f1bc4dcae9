package informer

// KeyAdder is what EnqueueKeys feeds: a *workqueue.Queue[string] is one.
type KeyAdder interface {
	Add(key string)
}

// EnqueueKeys registers a handler that adds the key of every add, update
// (resyncs included) and delete to q: the reconciler pattern, where a
// worker reads the key's current state from the informer (Get) and acts on
// it. The handler never blocks the informer for longer than q.Add takes.
func EnqueueKeys[T any](inf *Informer[T], q KeyAdder) (Registration, error) {
	return inf.AddEventHandler(Handler[T]{
		Name:     "enqueue-keys",
		OnAdd:    func(key string, _ T, _ bool) { q.Add(key) },
		OnUpdate: func(key string, _, _ T) { q.Add(key) },
		OnDelete: func(key string, _ T, _ bool) { q.Add(key) },
	})
}

package eventstore

import (
	"context"

	"github.com/convilyn/turbolane/domain"
)

// The shapes other packages declare for what they use of this one
// (docs/architecture.md); checked at compile time so that a signature change
// breaks this package's build before it breaks theirs.
var (
	_ interface {
		Execute(ctx context.Context, jobID string, cmd domain.Command) (domain.Job, error)
		Load(ctx context.Context, jobID string) ([]domain.Event, error)
		Append(ctx context.Context, jobID string, expected uint64, evs ...domain.Event) (uint64, error)
	} = (*Store)(nil)
	_ interface {
		Subscribe(ctx context.Context, from uint64, fn func(context.Context, domain.Event) error) error
		LastSequence(ctx context.Context) (uint64, error)
	} = (*Store)(nil)
	_ interface {
		Dispatch(ctx context.Context, fn func(context.Context, domain.Event) error) error
		Enqueue(ctx context.Context, it WorkItem) error
		Consume(ctx context.Context, pool string, slots int, fn func(context.Context, Delivery) error) error
	} = (*Store)(nil)
	_ interface {
		Ping(ctx context.Context) error
		Health(ctx context.Context) error
	} = (*Store)(nil)
	_ interface {
		Put(ctx context.Context, f domain.File) error
		Get(ctx context.Context, id string) (domain.File, error)
		Delete(ctx context.Context, id string) error
		List(ctx context.Context) ([]domain.File, error)
	} = (*Files)(nil)
	_ interface {
		Put(ctx context.Context, k APIKey) error
		Get(ctx context.Context, hash string) (APIKey, error)
	} = (*Keys)(nil)
	_ Delivery = (*delivery)(nil)
)

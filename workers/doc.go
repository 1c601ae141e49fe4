// Package workers is the work side of Turbo Lane: the dispatcher turns created
// and retried job events into work items, pools run a runner per work item
// (claim the attempt, stream the inputs to a private directory, run the
// processor's Engine under a timeout, upload the results, complete or fail the
// job), and the retention sweeper deletes expired files. It talks to the event
// store and blob storage only through the small interfaces declared here, and
// it must not decide job state itself: every transition goes through a
// domain command, so a duplicated or redelivered work item can never complete
// a job twice.
package workers

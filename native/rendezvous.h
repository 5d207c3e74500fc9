// Where a communicator's ranks meet: the rendezvous store and this
// communicator's namespace in it. The Communicator owns it and hands it to
// the engines that need the store after connecting (the NCCL backend
// exchanges its unique id there), so none of them reaches into another.
//
// The store is opened on the queue thread by init (a TCP store connects
// there) and copied by split for the child before the child's queue starts;
// after that it is read on the queue thread only.
#pragma once

#include <memory>
#include <string>

#include <gloo/rendezvous/store.h>

namespace collectives {

struct Rendezvous {
  std::shared_ptr<gloo::rendezvous::Store> store;
  std::string prefix;

  // The namespace of a communicator split off under `key`, as
  // GlooBackend::split names it.
  Rendezvous child(const std::string& key) const { return {store, prefix + "/" + key}; }
};

}  // namespace collectives

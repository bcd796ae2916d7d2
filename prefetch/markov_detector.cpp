#include "prefetch/markov_detector.h"

#include <algorithm>
#include <unordered_set>

namespace tiercache {

void MarkovDetector::Observe(BlockId id, uint64_t bytes, uint64_t now) {
  if (started_) {
    Node& node = nodes_[last_];
    auto it = std::find_if(node.successors.begin(), node.successors.end(),
                           [&](const Successor& s) { return s.id == id; });
    if (it == node.successors.end()) {
      if (node.successors.size() == kMaxSuccessors) {
        node.total -= node.successors.back().count;
        node.successors.pop_back();
      }
      node.successors.push_back({id, 0});
      it = node.successors.end() - 1;
    }
    ++it->count;
    ++node.total;
    if (it->count == UINT32_MAX / 2) {
      node.total = 0;
      for (Successor& s : node.successors) node.total += s.count = (s.count + 1) / 2;
    }
    // Keep descending order: the bumped entry moves up past smaller counts.
    while (it != node.successors.begin() && (it - 1)->count < it->count) {
      std::iter_swap(it, it - 1);
      --it;
    }
  }
  started_ = true;
  last_ = id;
  now_ = now;
}

double MarkovDetector::TransitionProbability(BlockId a, BlockId b) const {
  auto node = nodes_.find(a);
  if (node == nodes_.end() || node->second.total == 0) return 0;
  for (const Successor& s : node->second.successors) {
    if (s.id == b) return static_cast<double>(s.count) / static_cast<double>(node->second.total);
  }
  return 0;
}

void MarkovDetector::PredictNext(size_t n, std::vector<BlockId>* out) const {
  if (!started_) return;
  std::vector<std::pair<double, BlockId>> frontier = {{1.0, last_}}, next;
  std::unordered_set<BlockId> listed;
  // A chain longer than the number of known blocks only revisits them (a
  // deterministic cycle keeps a frontier of one forever): stop there, so a
  // request for more blocks than the pattern holds returns what it holds.
  for (size_t step = 0; n > 0 && !frontier.empty() && step < nodes_.size(); ++step) {
    next.clear();
    for (const auto& [p, id] : frontier) {
      auto node = nodes_.find(id);
      if (node == nodes_.end() || node->second.total == 0) continue;
      for (const Successor& s : node->second.successors) {
        const double q = p * s.count / static_cast<double>(node->second.total);
        if (q < kMinProbability) break;
        auto same = std::find_if(next.begin(), next.end(), [&](const auto& e) { return e.second == s.id; });
        if (same == next.end()) next.push_back({q, s.id}); else same->first += q;
      }
    }
    std::sort(next.begin(), next.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    if (next.size() > kBeam) next.resize(kBeam);
    for (const auto& [p, id] : next) {
      if (n > 0 && listed.insert(id).second) {
        out->push_back(id);
        --n;
      }
    }
    frontier.swap(next);
  }
}

uint64_t MarkovDetector::PredictDistance(BlockId id, uint64_t now) const {
  if (!started_ || now != now_) return kNeverUsedAgain;
  auto node = nodes_.find(last_);
  if (node == nodes_.end() || node->second.successors.empty()) return kNeverUsedAgain;
  return node->second.successors.front().id == id ? 1 : kNeverUsedAgain;
}

}  // namespace tiercache

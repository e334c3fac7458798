// Every file of the public API names its package for Go, Java and C#, so clients in those
// languages generate without flags.
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <string>

#include "onestory/v1/alert.pb.h"
#include "onestory/v1/case.pb.h"
#include "onestory/v1/common.pb.h"
#include "onestory/v1/context.pb.h"
#include "onestory/v1/conversation.pb.h"
#include "onestory/v1/identity.pb.h"
#include "onestory/v1/options.pb.h"
#include "onestory/v1/privacy.pb.h"
#include "onestory/v1/timeline.pb.h"

namespace onestory {
namespace {

TEST(ProtoOptionsTest, EveryFileNamesItsPackageForOtherLanguages) {
  const google::protobuf::FileDescriptor* files[] = {
      v1::Alert::descriptor()->file(),
      v1::Case::descriptor()->file(),
      v1::Actor::descriptor()->file(),
      v1::GetContextRequest::descriptor()->file(),
      v1::Conversation::descriptor()->file(),
      v1::ResolveRequest::descriptor()->file(),
      google::protobuf::DescriptorPool::generated_pool()->FindFileByName(
          "onestory/v1/options.proto"),
      v1::EraseCustomerRequest::descriptor()->file(),
      v1::AppendRequest::descriptor()->file(),
  };
  for (const auto* f : files) {
    ASSERT_NE(f, nullptr);
    SCOPED_TRACE(f->name());
    const google::protobuf::FileOptions& o = f->options();
    EXPECT_EQ(o.go_package(), "onestory/gen/go/onestory/v1;onestoryv1");
    EXPECT_EQ(o.java_package(), "dev.onestory.v1");
    EXPECT_TRUE(o.java_multiple_files());
    EXPECT_FALSE(o.java_outer_classname().empty());
    EXPECT_EQ(o.csharp_namespace(), "OneStory.V1");
  }
}

}  // namespace
}  // namespace onestory

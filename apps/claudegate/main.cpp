// SPDX-License-Identifier: Apache-2.0
#include "app.hpp"

int main(int argc, char** argv) {
  return claudegate::app::run(argc, argv);
}

#!/bin/sh
# Usage: check_readme.sh README.md train_loop.cpp
# Fails unless the first ```cpp block of README.md's "## Using the library" section is the file,
# byte for byte, so the example a reader copies is the one the build compiles and ctest runs.
readme=$1 file=$2
block=$(mktemp) && trap 'rm -f "$block"' EXIT
awk '/^## /{in_section = ($0 == "## Using the library")}
     in_section && !in_code && /^```cpp$/ {in_code = 1; found = 1; next}
     in_code && /^```$/ {exit}
     in_code {print}
     END {if (!found) exit 3}' "$readme" >"$block"
status=$?
if [ $status -eq 3 ]; then
  echo "$readme: no \`\`\`cpp block in the '## Using the library' section (expected $file there)" >&2
  exit 1
fi
if ! diff -u --label "$readme (Using the library)" --label "$file" "$block" "$file"; then
  echo "$readme: the '## Using the library' code block differs from $file (diff above);" \
       "paste the file into the README unchanged" >&2
  exit 1
fi
echo "$readme: the '## Using the library' code block is $file ($(wc -l <"$file") lines)"

#!/usr/bin/env bash
# Post report.md on a pull request with GitHub's own CLI (gh), its pictures kept in this repository:
#     scripts/post_report.sh PR [REPORT]        # PR: the pull request's number; REPORT: default report.md
# 1. the pictures beside the report (REPORT's stem + _images/) are committed to the branch pr-reports, under
#    PR/<commit>/, by git plumbing (no checkout; the workflow's own credentials push it): never a third party's host;
# 2. their links in the report are rewritten to that commit's files on GitHub (GITHUB_SERVER_URL, GITHUB_REPOSITORY);
# 3. `gh pr comment --edit-last` updates this workflow's last comment, or the first run posts one (GH_TOKEN).
# docs/sharing.md says why gh and not CML.
set -euo pipefail
case ${1:-} in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
[ $# -ge 1 ] || { echo "error: no pull request number (scripts/post_report.sh --help)" >&2; exit 2; }
pr=$1 report=${2:-report.md}
images=$(dirname "$report")/$(basename "$report" .md)_images
server=${GITHUB_SERVER_URL:-https://github.com}
repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY (owner/name) is not set: the workflow sets it}
head=$(git rev-parse HEAD)
body=$(mktemp)
cp "$report" "$body"

if compgen -G "$images/*" > /dev/null; then
  index=$(mktemp) && rm "$index"
  parent=""
  if git fetch -q origin pr-reports:refs/remotes/origin/pr-reports 2>/dev/null; then
    parent=$(git rev-parse refs/remotes/origin/pr-reports)
    GIT_INDEX_FILE=$index git read-tree "$parent"
  fi
  for file in "$images"/*; do
    blob=$(git hash-object -w "$file")
    GIT_INDEX_FILE=$index git update-index --add --cacheinfo "100644,$blob,$pr/$head/$(basename "$file")"
  done
  tree=$(GIT_INDEX_FILE=$index git write-tree)
  commit=$(git commit-tree "$tree" ${parent:+-p "$parent"} -m "pictures of the report on pull request $pr at $head")
  git push -q origin "$commit:refs/heads/pr-reports"
  url="$server/$repo/blob/$commit/$pr/$head"
  sed -i -E "s#\]\($(basename "$images")/([^)]+)\)#]($url/\1?raw=true)#g" "$body"
  echo "pictures: $url"
fi
gh pr comment "$pr" --edit-last --body-file "$body" 2>/dev/null || gh pr comment "$pr" --body-file "$body"

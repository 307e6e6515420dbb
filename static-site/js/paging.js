// Page navigation for DRF-paged lists shown from the URL (`?page=N`): fetches one page and
// describes it for the pager partial (links to the previous and next pages, "21–40 of 57").
import * as api from "./api.js";

export const PAGE_SIZE = 20;

/** One page of `path` for the page number in `url` (`?page=`), plus the pager description. */
export async function loadPage(path, filters, url, label) {
  const page = Math.max(1, Number(url.searchParams.get("page")) || 1);
  const data = await api.get(path, { ...filters, page, pageSize: PAGE_SIZE });
  const link = (n) => {
    const u = new URL(url);
    if (n === 1) u.searchParams.delete("page");
    else u.searchParams.set("page", n);
    return u.pathname + u.search;
  };
  const first = (page - 1) * PAGE_SIZE + 1;
  return {
    items: data.results,
    pager: {
      label,
      previous: data.previous ? link(page - 1) : null,
      next: data.next ? link(page + 1) : null,
      text: data.count ? `${first}–${first + data.results.length - 1} of ${data.count}` : "None",
    },
  };
}

/** Runs `fn` over `items` with at most `limit` calls at a time; results in order. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

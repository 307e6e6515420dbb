//! Reads as `jupyterhealth-client` does them: an Observation search by `code` and `date` in pages
//! of 1000, following `link[relation=next]` to the end; each page timed (request sent to last
//! byte received). Also a study-wide pull and the admin lists.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::ProgressBar;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::client::{Api, Res, Token, enc};
use crate::ingest;
use crate::setup::{BG_CODE, OMH_SYSTEM};

/// No pull follows more `next` links than this.
pub const MAX_PAGES: usize = 100_000;

/// A search URL: `selector` (`patient=ID` or `patient._has:Group:member:_id=ID`), blood glucose,
/// `date=ge{start}&date=lt{end}`, `_count`.
pub fn observation_search(api: &Api, selector: &str, start: i64, end: i64, count: usize) -> String {
    format!(
        "{}/FHIR/R5/Observation?{selector}&code={}&date=ge{}&date=lt{}&_count={count}",
        api.base,
        enc(&format!("{OMH_SYSTEM}|{BG_CODE}")),
        enc(&rfc3339(start)),
        enc(&rfc3339(end))
    )
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    entry: Vec<IgnoredAny>,
    #[serde(default)]
    link: Vec<Link>,
}
#[derive(Deserialize)]
struct Link {
    relation: String,
    url: String,
}

/// One search followed to its end.
#[derive(Debug, Default, Clone)]
pub struct Pull {
    pub pages: usize,
    pub observations: usize,
    pub bytes: u64,
    pub page_ms: Vec<f64>,
    pub wall_s: f64,
}

/// One timed GET of a page: its body and the milliseconds from request to last byte; an error
/// for an answer that is not a success.
async fn get_page(api: &Api, token: &Token, url: &str) -> Res<(impl std::ops::Deref<Target = [u8]> + use<>, f64)> {
    let tok = token.get().await?;
    let t = Instant::now();
    let resp = api.http.get(url).bearer_auth(tok).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() {
        return Err(format!("GET {url}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
    }
    Ok((body, ms))
}

/// Follows a search from `first` to its last page.
pub async fn pull(api: &Api, token: &Token, first: &str, pb: Option<&ProgressBar>) -> Res<Pull> {
    let started = Instant::now();
    let mut out = Pull::default();
    let mut url = first.to_string();
    loop {
        let (body, ms) = get_page(api, token, &url).await?;
        let page: Page = serde_json::from_slice(&body).map_err(|e| format!("GET {url}: {e}"))?;
        out.pages += 1;
        out.observations += page.entry.len();
        out.bytes += body.len() as u64;
        out.page_ms.push(ms);
        if let Some(pb) = pb {
            pb.inc(page.entry.len() as u64);
        }
        match page.link.into_iter().find(|l| l.relation == "next") {
            Some(l) if out.pages < MAX_PAGES => url = l.url,
            _ => break,
        }
    }
    out.wall_s = started.elapsed().as_secs_f64();
    Ok(out)
}

/// Pages read by `concurrency` clients at once, each pulling the whole search `pulls` times.
#[derive(Debug, Default)]
pub struct Level {
    pub concurrency: usize,
    pub pulls: usize,
    pub pages: usize,
    pub observations: usize,
    pub bytes: u64,
    pub page_ms: Vec<f64>,
    pub wall_s: f64,
    /// Pulls that did not return the expected number of observations, or failed.
    pub incomplete: usize,
    pub errors: Vec<String>,
}

pub async fn level(
    api: &Api,
    token: &Arc<Token>,
    first: &str,
    concurrency: usize,
    pulls_each: usize,
    expected: usize,
    pb: &ProgressBar,
) -> Level {
    let result = Arc::new(Mutex::new(Level { concurrency, ..Level::default() }));
    pb.set_length((concurrency * pulls_each * expected) as u64);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (api, token, first, result, pb) =
            (api.clone(), token.clone(), first.to_string(), result.clone(), pb.clone());
        set.spawn(async move {
            for _ in 0..pulls_each {
                let r = pull(&api, &token, &first, Some(&pb)).await;
                let mut l = result.lock().unwrap_or_else(|p| p.into_inner());
                l.pulls += 1;
                match r {
                    Ok(p) => {
                        if p.observations != expected {
                            l.incomplete += 1;
                            if l.errors.len() < 5 {
                                l.errors.push(format!(
                                    "pull returned {} observations, expected {expected}",
                                    p.observations
                                ));
                            }
                        }
                        l.pages += p.pages;
                        l.observations += p.observations;
                        l.bytes += p.bytes;
                        l.page_ms.extend(p.page_ms);
                    }
                    Err(e) => {
                        l.incomplete += 1;
                        if l.errors.len() < 5 {
                            l.errors.push(e);
                        }
                    }
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let mut l = std::mem::take(&mut *result.lock().unwrap_or_else(|p| p.into_inner()));
    l.wall_s = started.elapsed().as_secs_f64();
    l
}

/// An admin list (`{count, next, results}`) read page by page (at most `max_pages`).
#[derive(Debug, Default)]
pub struct ListRead {
    pub path: String,
    pub count: Option<u64>,
    pub pages: usize,
    pub items: usize,
    pub page_ms: Vec<f64>,
    pub wall_s: f64,
    pub complete: bool,
}

#[derive(Deserialize)]
struct ListPage {
    count: Option<u64>,
    next: Option<String>,
    #[serde(default)]
    results: Vec<IgnoredAny>,
}

pub async fn admin_list(api: &Api, token: &Token, path: &str, max_pages: usize) -> Res<ListRead> {
    let started = Instant::now();
    let mut out = ListRead { path: path.to_string(), ..ListRead::default() };
    let mut url = api.url(path);
    loop {
        let (body, ms) = get_page(api, token, &url).await?;
        out.page_ms.push(ms);
        let page: ListPage = serde_json::from_slice(&body).map_err(|e| format!("GET {url}: {e}"))?;
        out.pages += 1;
        out.items += page.results.len();
        out.count = out.count.or(page.count);
        match page.next {
            Some(n) if out.pages < max_pages => url = n,
            Some(_) => break,
            None => {
                out.complete = true;
                break;
            }
        }
    }
    out.wall_s = started.elapsed().as_secs_f64();
    Ok(out)
}

/// The window of the measured patient's data: `days` days ending at `end`.
pub fn window(end: i64, days: usize) -> (i64, i64) {
    (end - days as i64 * 86_400, end)
}

/// Observations a patient has in a window of `days` days.
pub fn expected(days: usize) -> usize {
    days * ingest::PER_DAY
}

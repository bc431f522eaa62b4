import { geoEqualEarth, geoPath } from "d3-geo";
import type { FeatureCollection, Geometry } from "geojson";
import { useEffect, useState } from "preact/hooks";
import { feature } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
import { gql } from "../api";
import { nodes, type Connection } from "../data";
import { format, plural, useTexts } from "../i18n";
import { CITIES, OPEN_PROBLEMS } from "../queries";
import type { Urgency } from "../taxonomy";

type City = {
  slug: string;
  name: string;
  country: string;
  location: { latitude: number; longitude: number } | null;
};
type OpenProblem = { id: string; title: string; urgency: Urgency; city: { slug: string } };
type Page<T> = Connection<T> & { pageInfo: { hasNextPage: boolean; endCursor: string | null } };

const MAX_PAGES = 20; // 2,000 cities or open problems: beyond that the map needs clustering
const WIDTH = 960;
const HEIGHT = 500;

async function all<T>(query: string, field: string): Promise<T[]> {
  const found: T[] = [];
  let after: string | null = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const data: Record<string, Page<T>> = await gql(query, { after });
    found.push(...nodes(data[field]));
    if (!data[field].pageInfo.hasNextPage) break;
    after = data[field].pageInfo.endCursor;
  }
  return found;
}

type Loaded = {
  countries: FeatureCollection<Geometry>;
  cities: City[];
  problems: Map<string, OpenProblem[]>;
};

export function MapPage() {
  const { t, language } = useTexts();
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    Promise.all([
      import("world-atlas/countries-110m.json"),
      all<City>(CITIES, "cities"),
      all<OpenProblem>(OPEN_PROBLEMS, "problems"),
    ]).then(
      ([atlas, cities, problems]) => {
        const topology = atlas.default as unknown as Topology<{ countries: GeometryCollection }>;
        const byCity = new Map<string, OpenProblem[]>();
        for (const problem of problems) {
          byCity.set(problem.city.slug, [...(byCity.get(problem.city.slug) ?? []), problem]);
        }
        setLoaded({
          countries: feature(topology, topology.objects.countries) as FeatureCollection<Geometry>,
          cities,
          problems: byCity,
        });
      },
      (failure: Error) => setError(failure.message),
    );
  }, []);

  const heading = <h1 tabIndex={-1}>{t.map.title}</h1>;
  if (error) {
    return (
      <>
        {heading}
        <p role="alert" class="error">
          {format(t.common.error, { error })}
        </p>
      </>
    );
  }
  if (!loaded) {
    return (
      <>
        {heading}
        <p role="status" class="muted">
          {t.common.loading}
        </p>
      </>
    );
  }
  const projection = geoEqualEarth().fitSize([WIDTH, HEIGHT], loaded.countries);
  const path = geoPath(projection);
  const located = loaded.cities.filter((city) => city.location);
  const unlocated = loaded.cities.filter((city) => !city.location);
  const withProblems = loaded.cities.filter((city) => loaded.problems.has(city.slug));
  return (
    <>
      {heading}
      <p>{t.map.description}</p>
      <figure class="map">
        <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby="map-caption">
          <g class="countries">
            {loaded.countries.features.map((country, index) => (
              <path key={index} d={path(country) ?? ""} />
            ))}
          </g>
          <g class="cities">
            {located.map((city) => {
              const point = projection([city.location!.longitude, city.location!.latitude]);
              if (!point) return null;
              const open = loaded.problems.get(city.slug) ?? [];
              const crisis = open.some((problem) => problem.urgency === "ACTIVE_CRISIS");
              return (
                <circle
                  key={city.slug}
                  cx={point[0]}
                  cy={point[1]}
                  r={3 + Math.sqrt(open.length) * 3}
                  class={crisis ? "crisis" : open.length ? "open" : "quiet"}
                  data-city={city.slug}
                >
                  <title>
                    {city.name}: {plural(language, t.map.openProblems, open.length)}
                  </title>
                </circle>
              );
            })}
          </g>
        </svg>
        <figcaption id="map-caption">{t.map.description}</figcaption>
      </figure>
      <section aria-labelledby="map-list">
        <h2 id="map-list">{t.map.list}</h2>
        <ul class="city-list">
          {withProblems.map((city) => (
            <li key={city.slug}>
              <strong>{city.name}</strong>{" "}
              <span class="muted">
                ({plural(language, t.map.openProblems, loaded.problems.get(city.slug)!.length)})
              </span>
              <ul>
                {loaded.problems.get(city.slug)!.map((problem) => (
                  <li key={problem.id}>
                    <a href={`/app/problems/${encodeURIComponent(problem.id)}`}>{problem.title}</a>
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ul>
        {unlocated.length > 0 && (
          <p class="muted">
            {format(t.map.noLocation, { cities: unlocated.map((city) => city.name).join(", ") })}
          </p>
        )}
      </section>
    </>
  );
}

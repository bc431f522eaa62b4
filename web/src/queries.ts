// The app's GraphQL documents (schema/schema.graphql).

const EVENT_FIELDS = `
  id cursor type occurredAt urgency
  city { slug name }
  actor { name }
  subjectId
  subject {
    __typename
    ... on Problem { id title urgency }
    ... on Solution { id title }
    ... on Comment { id body subject { __typename ... on Problem { id title } ... on Solution { id title } } }
  }`;

export const EVENTS = `subscription Events($filter: EventFilter, $after: String) {
  events(filter: $filter, after: $after) { ${EVENT_FIELDS} }
}`;

export const VIEWER_EVENTS = `subscription ViewerEvents($after: String) {
  viewerEvents(after: $after) { ${EVENT_FIELDS} }
}`;

export const VIEWER = `query Viewer {
  viewer { subject person { id name } city { slug name peers(first: 10) { edges { node { slug name } } } } }
}`;

export const CITIES = `query Cities($after: String) {
  cities(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { slug name country location { latitude longitude } } }
  }
}`;

const PROBLEM_SUMMARY = `id title summary urgency status hazards createdAt city { slug name }`;

export const PROBLEMS = `query Problems($filter: ProblemFilter, $after: String) {
  problems(filter: $filter, first: 20, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { ${PROBLEM_SUMMARY} } }
  }
}`;

export const OPEN_PROBLEMS = `query OpenProblems($after: String) {
  problems(filter: { status: [OPEN, EXPLORING] }, first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { id title urgency city { slug } } }
  }
}`;

const COMMENT_FIELDS = `id body createdAt deletedAt hidden author { name } city { slug name }`;

const COMMENTS = `comments(first: 20) {
  edges { node { ${COMMENT_FIELDS} replies(first: 10) { edges { node { ${COMMENT_FIELDS} } } } } }
}`;

const REASONS = `score reasons { code text }`;

export const PROBLEM = `query Problem($id: ID!) {
  node(id: $id) {
    __typename
    ... on Problem {
      id title summary body status urgency hazards sectors tags stakeholders affectedPopulation
      version createdAt updatedAt
      city { slug name }
      facedBy { city { slug name } }
      helpOffers { city { slug name } note solution { id title } }
      answeredBy { id title city { name } }
      solutions(first: 20) { edges { node { id title status city { name } } } }
      suggestedSolutions(first: 5) { edges { ${REASONS} node { id title city { name } } } }
      similarProblems(first: 5) { edges { ${REASONS} node { id title city { name } } } }
      ${COMMENTS}
    }
  }
}`;

export const SOLUTION = `query Solution($id: ID!) {
  node(id: $id) {
    __typename
    ... on Solution {
      id title summary body status hazards sectors tags startedOn completedOn
      cost { amount currency year eur }
      costPerResidentEur residentsServed
      outcomes { metric value unit note }
      successFactors limitingFactors
      transferability { prerequisites context doDifferently }
      evidence { level links { url title } }
      adaptationNotes partners fundingSources
      city { slug name }
      problems { id title city { name } }
      lineage(depth: 3) {
        ancestors { depth adaptationNotes adaptedFromId solution { id title city { name } } }
        descendants { depth adaptationNotes adaptedFromId solution { id title city { name } } }
        truncated
      }
      adoptionSummary { text }
      adoptions(first: 20) { edges { node { id stage city { name } updatedAt } } }
      outcomeReports(first: 20) { edges { node { metric value unit baseline target measuredOn city { name } } } }
      similarSolutions(first: 5) { edges { ${REASONS} node { id title city { name } } } }
      ${COMMENTS}
    }
  }
}`;

export const ADD_COMMENT = `mutation AddComment($input: AddCommentInput!) {
  addComment(input: $input) { comment { id } userErrors { field message } }
}`;

export const FACE_TOO = `mutation FaceToo($input: FaceProblemTooInput!) {
  faceProblemToo(input: $input) { problem { id facedBy { city { slug name } } } userErrors { field message } }
}`;

export const PUBLISH_PROBLEM = `mutation Publish($input: PublishProblemInput!) {
  publishProblem(input: $input) { problem { id } userErrors { field message } }
}`;
